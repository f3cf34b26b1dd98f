#if canImport(Glibc)
import Glibc
#endif

/// Output streams, and whether to colour them: only on a terminal, never with `NO_COLOR`
/// (https://no-color.org).
struct Terminal: Sendable {
    let fileDescriptor: Int32

    static let standardOutput = Terminal(fileDescriptor: 1)
    static let standardError = Terminal(fileDescriptor: 2)

    var usesColour: Bool {
        isInteractive && getenv("NO_COLOR") == nil
    }

    /// A terminal, where progress can be redrawn in place.
    var isInteractive: Bool {
        isatty(fileDescriptor) == 1
    }

    func write(_ text: String) {
        var bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeMutableBytes { buffer in
                Glibc.write(fileDescriptor, buffer.baseAddress! + offset, buffer.count - offset)
            }
            if written < 0 {
                if errno == EINTR { continue }
                return
            }
            offset += written
        }
    }

    /// Wraps `text` in an SGR colour when colouring.
    func paint(_ text: String, _ colour: Colour) -> String {
        usesColour ? "\u{1B}[\(colour.rawValue)m\(text)\u{1B}[0m" : text
    }

    enum Colour: Int {
        case red = 31, green = 32, yellow = 33, bold = 1, dim = 2
    }
}
