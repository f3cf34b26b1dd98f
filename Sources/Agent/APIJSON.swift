import Foundation
import OpenAPIRuntime

/// How the API writes JSON: compact (scripts pipe it, and pretty printing costs the agent time
/// on every read), keys sorted, `/` as it is. Image references and paths are full of slashes,
/// and an answer should not read differently depending on which agent or which endpoint gave
/// it. The generated operations take `generatedOptions`; what the agent encodes itself (event,
/// catalog and log streams; a client agent's own answers) uses `encoder()`.
enum APIJSON {
    static let generatedOptions: JSONEncodingOptions = [.sortedKeys, .withoutEscapingSlashes]

    static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }
}
