import Foundation
import Testing

@testable import PulseboardApp
@testable import pulseboard

/// The settings list is where each setting is written once; `--help` is made from it, and the
/// README's table must say the same.
@Suite("Settings") struct SettingsTests {
    @Test func theReadmeTableListsEverySettingWithItsVariableAndDefault() throws {
        let readme = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../../README.md")
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

    @Test func theEnvironmentExampleHasEverySettingAndNoOther() throws {
        let example = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../../.env.example")
        let named = try String(contentsOf: example, encoding: .utf8).split(separator: "\n").compactMap { line -> String? in
            guard line.hasPrefix("# PULSEBOARD_") else { return nil }
            return String(line.dropFirst(2).prefix { $0 != "=" })
        }
        let variables = Setting.all.map { String($0.variable.prefix { $0 != "=" }) }
        #expect(named.sorted() == variables.sorted())
    }

    @Test func everySettingHasItsOwnFlagAndVariable() {
        let flags = Setting.all.compactMap(\.flag)
        #expect(Set(flags).count == flags.count)
        #expect(Set(Setting.all.map(\.variable)).count == Setting.all.count)
        #expect(Setting.all.allSatisfy { $0.variable.hasPrefix("PULSEBOARD_") })
    }

    /// `pulseboard serve` has an option for every setting that has a flag, and none that is not a
    /// setting (so that the README's table is the whole list).
    @Test func serveHasAnOptionForEverySettingAndNoOther() {
        let help = Serve.helpMessage(columns: 1000)
        let options = Set(help.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "," }).filter { $0.hasPrefix("--") }.map(String.init))
        let flags = Set(Setting.all.compactMap(\.flag).map { "--" + $0 })
        #expect(flags.subtracting(options).isEmpty, "serve lacks \(flags.subtracting(options).sorted())")
        #expect(options.subtracting(flags).subtracting(["--help"]).isEmpty, "serve has options outside the list: \(options.subtracting(flags).sorted())")
        for setting in Setting.all where setting.flag != nil {
            #expect(help.contains(setting.summary), "the help of --\(setting.flag!) is not the list's")
        }
    }
}
