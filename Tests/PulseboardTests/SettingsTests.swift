import Foundation
import Testing

@testable import PulseboardApp

/// The settings list is where each setting is written once; `--help` is made from it, and the
/// README's table must say the same.
@Suite("Settings") struct SettingsTests {
    @Test func theReadmeTableListsEverySettingWithItsVariableAndDefault() throws {
        let readme = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../README.md")
        let rows = try String(contentsOf: readme, encoding: .utf8).split(separator: "\n").filter { $0.hasPrefix("| `--") || $0.hasPrefix("| — |") }
        let table = rows.map { row in row.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) } }
        for setting in Setting.all {
            let flag = setting.flag.map { "`--\($0)`" } ?? "—"
            let row = table.first { $0.count >= 3 && $0[0] == flag && $0[1] == "`\(setting.variable)`" }
            #expect(row != nil, "README has no row for \(flag) \(setting.variable)")
            if let row { #expect([setting.defaultText, "`\(setting.defaultText)`"].contains(row[2]), "README's default of \(flag) is \(row[2])") }
        }
        #expect(table.count == Setting.all.count, "the README lists settings the server does not have")
    }

    @Test func everySettingHasItsOwnFlagAndVariable() {
        let flags = Setting.all.compactMap(\.flag)
        #expect(Set(flags).count == flags.count)
        #expect(Set(Setting.all.map(\.variable)).count == Setting.all.count)
        #expect(Setting.all.allSatisfy { $0.variable.hasPrefix("PULSEBOARD_") })
    }
}
