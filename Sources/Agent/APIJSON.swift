import Foundation

/// JSON the agent writes itself (event, catalog and log streams; a client agent's own answers),
/// written as the generated operations write theirs (`APIRouter`'s `jsonEncodingOptions`):
/// compact, keys sorted, `/` as it is. Image references and paths are full of slashes, and an
/// answer should not read differently depending on which agent or which endpoint gave it.
enum APIJSON {
    static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }
}
