import Foundation
import PulseboardKernel

/// Where submitted notebooks are kept: files in a directory (the data folder on one machine, or
/// a directory every instance shares), or inside the database itself (PostgreSQL's default, so
/// that several instances need nothing but the database). Each upload gets a random key; the
/// version row in the database names it.
package enum NotebookFiles: Sendable {
    case directory(URL)
    case database

    /// A notebook put away for a version row about to be written: its key, and the bytes to
    /// store in that row when the database is the file store.
    struct Stashed {
        var key: String
        var inline: Data?
        var sha256: String
    }

    /// Writes the notebook where it belongs before its version row is committed. A directory
    /// file is complete and flushed to disk before the row that names it can exist.
    func stash(_ notebook: Data) throws -> Stashed {
        let key = UUID().uuidString.lowercased()
        let digest = notebook.sha256Hex
        switch self {
        case .database:
            return Stashed(key: key, inline: notebook, sha256: digest)
        case .directory(let directory):
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let temporary = directory.appendingPathComponent(".\(key).partial")
            guard FileManager.default.createFile(atPath: temporary.path, contents: nil) else {
                throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: temporary.path])
            }
            let handle = try FileHandle(forWritingTo: temporary)
            try handle.write(contentsOf: notebook)
            try handle.synchronize()
            try handle.close()
            try FileManager.default.moveItem(at: temporary, to: file(key, in: directory))
            return Stashed(key: key, inline: nil, sha256: digest)
        }
    }

    /// The notebook of a version row: its inline bytes, or its file.
    func content(key: String, inline: Data?) throws -> Data? {
        switch self {
        case .database: inline
        case .directory(let directory): inline ?? FileManager.default.contents(atPath: file(key, in: directory).path)
        }
    }

    /// Removes the files of versions that are gone (or were never committed).
    func discard(keys: [String]) {
        guard case .directory(let directory) = self else { return }
        for key in keys { try? FileManager.default.removeItem(at: file(key, in: directory)) }
    }

    /// Deletes files that no version names and that are older than `before`: left by a crash
    /// between writing a file and committing its row, or by a class or assignment deleted with
    /// its submissions. The age guard spares uploads whose rows are being committed right now.
    func sweep(referenced: Set<String>, before: Date) {
        guard case .directory(let directory) = self,
            let names = try? FileManager.default.contentsOfDirectory(atPath: directory.path)
        else { return }
        for name in names {
            let key = name.hasPrefix(".") ? String(name.dropFirst().prefix { $0 != "." }) : String(name.prefix { $0 != "." })
            guard !referenced.contains(key) || name.hasSuffix(".partial") else { continue }
            let url = directory.appendingPathComponent(name)
            let modified = (try? url.resourceValues(forKeys: [.contentModificationDateKey]))?.contentModificationDate ?? .distantFuture
            if modified < before { try? FileManager.default.removeItem(at: url) }
        }
    }

    private func file(_ key: String, in directory: URL) -> URL {
        directory.appendingPathComponent("\(key).ipynb")
    }
}
