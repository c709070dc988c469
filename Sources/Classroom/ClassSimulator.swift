import Foundation
import PulseboardKernel

/// A simulated class of JupyterLab users, in exactly the cell-monitor extension's event format:
/// each student opens the notebook, runs its cells in order every few seconds, sometimes fails
/// (and retries the cell), saves now and then, occasionally asks for help while stuck and
/// releases it later. Seeded, so a run can be repeated. Used by `pulseboard simulate`, the
/// benchmark and the browser test.
public struct ClassSimulator: Sendable {
    struct Student: Sendable {
        var email: String
        var name: String
        var team: String
        var session: String
        var cell = -1
        var runs = 0
        var failing = false
        var helpAskedAt: Date?
    }

    static let errors = [
        "NameError: name 'df' is not defined",
        "ZeroDivisionError: division by zero",
        "KeyError: 'price'",
        "TypeError: unsupported operand type(s) for +: 'int' and 'str'",
        "IndexError: list index out of range",
    ]

    public let notebook: String
    public let cells: Int
    public var studentCount: Int { students.count }
    private var students: [Student]
    private var random: SplitMix64

    public init(students count: Int, teams: Int, notebook: String = "week1/intro.ipynb", cells: Int = 40, seed: UInt64 = 2026) {
        self.notebook = notebook
        self.cells = cells
        random = SplitMix64(seed: seed)
        students = (0..<count).map { index in
            let number = String(index + 1).leftPadded(to: 3)
            return Student(
                email: "student\(number)@example.com", name: "Student \(number)", team: "team-\(index % max(teams, 1) + 1)",
                session: "session-\(number)-\(seed)")
        }
    }

    /// The next thing student `index` does, as events (JSON objects) at `now`.
    public mutating func step(student index: Int, now: Date) -> [[String: Any]] {
        var student = students[index]
        defer { students[index] = student }
        if student.cell < 0 {
            student.cell = 0
            return [event("notebook_opened", student, now)]
        }
        if let asked = student.helpAskedAt {
            // Someone helped (or the student found it): release after 10 to 40 seconds.
            guard now.timeIntervalSince(asked) > 10 + Double(random.next() % 30) else { return [] }
            student.helpAskedAt = nil
            student.failing = false
            return [event("help_stop", student, now)]
        }
        if student.failing && random.chance(0.15) {
            student.helpAskedAt = now
            return [event("help", student, now)]
        }
        student.failing = random.chance(student.failing ? 0.5 : 0.08)
        var run = event("cell_executed", student, now)
        run["cellId"] = "cell-\(student.cell)"
        run["cellIndex"] = student.cell
        run["cellType"] = "code"
        run["code"] = "result = step_\(student.cell)(data)\nprint(result)"
        run["executionCount"] = student.runs + 1
        run["executionDurationMs"] = 5 + Double(random.next() % 2_000) / 10
        run["hasError"] = student.failing
        if student.failing {
            run["errorMessage"] = Self.errors[Int(random.next() % UInt64(Self.errors.count))]
        } else {
            run["result"] = "ok"
            student.cell = (student.cell + 1) % cells
        }
        student.runs += 1
        var events = [run]
        if student.runs % 10 == 0 { events.append(event("notebook_saved", student, now)) }
        return events
    }

    private func event(_ type: String, _ student: Student, _ now: Date) -> [String: Any] {
        [
            "eventId": UUID().uuidString.lowercased(),
            "eventType": type,
            "eventTime": Timestamp.format(now),
            "emailAddress": student.email,
            "userName": student.name,
            "teamName": student.team,
            "sessionId": student.session,
            "notebookPath": notebook,
            "metadata": ["source": "pulseboard simulate"],
        ]
    }
}

/// A small seeded generator (SplitMix64), so that simulated classes are repeatable.
package struct SplitMix64: Sendable {
    private var state: UInt64

    init(seed: UInt64) {
        state = seed
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func chance(_ probability: Double) -> Bool {
        Double(next() % 1_000_000) / 1_000_000 < probability
    }
}

extension String {
    func leftPadded(to width: Int) -> String {
        String(repeating: "0", count: max(0, width - count)) + self
    }
}
