/// Checks shared by every argv a manifest holds (the service's command, an exec check's).
enum Command {
    static func reportProblems(_ argv: [String], at path: JSONPath, _ reader: ObjectReader) {
        if let program = argv.first, program.isEmpty {
            reader.report(at: path.appending(0), "the program must not be empty; write a path such as \"/bin/httpd\" or a name found on PATH")
        }
        for (index, argument) in argv.enumerated() where argument.utf8.contains(0) {
            reader.report(at: path.appending(index), "contains a NUL character, which cannot be passed to a program")
        }
    }
}
