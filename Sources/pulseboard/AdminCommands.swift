import ArgumentParser
import Foundation
import PulseboardAccounts
import PulseboardApp
import PulseboardCourses
import PulseboardKernel

extension Role: ExpressibleByArgument {}

struct UserCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "user",
        abstract: "Manage users (works while the server runs).",
        subcommands: [Create.self, List.self, SetRole.self, ResetPassword.self]
    )

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a user. The password comes from PULSEBOARD_USER_PASSWORD, or is generated and printed."
        )
        @OptionGroup var data: DataOptions
        @Option(help: "Email address (the login).") var email: String
        @Option(help: "admin, instructor or student.") var role: Role = .student

        func run() async throws {
            let (password, generated) = newPassword()
            let (email, role) = (email, role)
            let user = try await data.withStore { try await UserAdministration.create(email: email, password: password, role: role, in: $0) }
            print("Created \(user.role.rawValue) \(user.email) (id \(user.id)).")
            if generated { print("Password (shown once): \(password)") }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List users.")
        @OptionGroup var data: DataOptions

        func run() async throws {
            for user in try await data.withStore({ try await Accounts(store: $0).listUsers() }) {
                print("\(user.id)\t\(user.role.rawValue)\t\(user.email)")
            }
        }
    }

    struct SetRole: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "set-role", abstract: "Change a user's role.")
        @OptionGroup var data: DataOptions
        @Argument(help: "The user's email.") var email: String
        @Argument(help: "admin, instructor or student.") var role: Role

        func run() async throws {
            let (email, role) = (email, role)
            try await data.withStore { store in
                try await UserAdministration.setRole(email: email, role: role, in: store)
                try await Pulseboard.announceAccessChange(in: store)
            }
            print("\(email) is now \(role.rawValue).")
        }
    }

    struct ResetPassword: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "reset-password",
            abstract: "Set a new password (from PULSEBOARD_USER_PASSWORD, or generated and printed) and end the user's sessions."
        )
        @OptionGroup var data: DataOptions
        @Argument(help: "The user's email.") var email: String

        func run() async throws {
            let (password, generated) = newPassword()
            let email = email
            try await data.withStore { store in
                try await UserAdministration.resetPassword(email: email, password: password, in: store)
                try await Pulseboard.announceAccessChange(in: store)
            }
            print("Password of \(email) changed.")
            if generated { print("Password (shown once): \(password)") }
        }
    }

    static func newPassword() -> (String, generated: Bool) {
        if let password = ProcessInfo.processInfo.environment["PULSEBOARD_USER_PASSWORD"], !password.isEmpty {
            return (password, false)
        }
        return (UserAdministration.generatePassword(), true)
    }
}

struct TokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token",
        abstract: "Manage ingest tokens (machine credentials that may only ingest) and users' API tokens.",
        subcommands: [Create.self, List.self, Revoke.self]
    )

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create an ingest token, or with --user an API token of that user; it is shown once.")
        @OptionGroup var data: DataOptions
        @Argument(help: "A name to recognise the token by.") var name: String
        @Option(help: "Create an API token that acts as this user (for Grafana or a script) instead of an ingest token.") var user: String?

        func run() async throws {
            let name = name
            if let email = user {
                let (token, secret) = try await data.withStore { try await UserAdministration.createAPIToken(name: name, email: email, in: $0) }
                print("Created API token \(token.id) '\(token.name)' of \(email). Send it as 'Authorization: Bearer <token>' (shown once):")
                print(secret)
                return
            }
            let (token, secret) = try await data.withStore { try await UserAdministration.createIngestToken(name: name, in: $0) }
            print("Created ingest token \(token.id) '\(token.name)'. Send it as 'Authorization: Bearer <token>' (shown once):")
            print(secret)
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List ingest tokens.")
        @OptionGroup var data: DataOptions

        func run() async throws {
            for token in try await data.withStore({ try await Accounts(store: $0).listIngestTokens() }) {
                print("\(token.id)\t\(token.prefix)…\t\(token.revokedAt == nil ? "active" : "revoked")\t\(token.name)")
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke an ingest token by id.")
        @OptionGroup var data: DataOptions
        @Argument(help: "The token's id (see 'token list').") var id: Int64

        func run() async throws {
            let id = id
            guard try await data.withStore({ try await UserAdministration.revokeIngestToken(id: id, in: $0) }) else {
                throw ValidationError("No active ingest token with id \(id).")
            }
            print("Revoked ingest token \(id).")
        }
    }
}

struct ClassCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "class",
        abstract: "Manage classes (whose students' JupyterLab extensions send learning events).",
        subcommands: [Create.self, List.self, Token.self, RotateToken.self]
    )

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a class and print the serverUrl its students' extensions need.")
        @OptionGroup var data: DataOptions
        @OptionGroup var address: PublicAddress
        @Option(help: "The class's name.") var name: String
        @Option(help: "A unique code: letters, digits, '-', '_' or '.'.") var code: String
        @Option(help: "Email of the instructor (or admin) who owns it.") var owner: String
        @Option(help: "A description.") var description = ""

        func run() async throws {
            let (name, code, owner, description) = (name, code, owner, description)
            let (record, token) = try await data.withStore {
                try await ClassAdministration.create(name: name, code: code, description: description, ownerEmail: owner, in: $0)
            }
            print("Created class \(record.id) '\(record.name)' (\(record.code)). Each student's cell-monitor serverUrl:")
            try address.print(token: token)
        }
    }

    struct Token: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print a class's serverUrl again (its instructors see it on the class page too).")
        @OptionGroup var data: DataOptions
        @OptionGroup var address: PublicAddress
        @Argument(help: "The class's id (see 'class list').") var id: Int64

        func run() async throws {
            let id = id
            guard let token = try await data.withStore({ try await ClassAdministration.ingestToken(classID: id, in: $0) }) else {
                throw ValidationError("Class \(id)'s token was issued before tokens were kept: replace it once with 'class rotate-token \(id)'.")
            }
            try address.print(token: token)
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List classes.")
        @OptionGroup var data: DataOptions

        func run() async throws {
            for record in try await data.withStore({ try await ClassAdministration.list(in: $0) }) {
                print("\(record.id)\t\(record.code)\t\(record.tokenPrefix)…\towner \(record.ownerID)\t\(record.name)")
            }
        }
    }

    struct RotateToken: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Replace a class's ingest token; the old one works for --grace-hours more.")
        @OptionGroup var data: DataOptions
        @OptionGroup var address: PublicAddress
        @Argument(help: "The class's id (see 'class list').") var id: Int64
        @Option(help: "Hours the old token keeps working (0: stop it now, for a token that leaked).") var graceHours = 24

        func validate() throws {
            guard (0...168).contains(graceHours) else { throw ValidationError("--grace-hours is 0 to 168.") }
        }

        func run() async throws {
            let (id, grace) = (id, Duration.seconds(graceHours * 3600))
            let token = try await data.withStore { try await ClassAdministration.rotateToken(classID: id, grace: grace, in: $0) }
            print("New serverUrl for class \(id):")
            try address.print(token: token)
        }
    }
}

/// The server's address in the serverUrls the class commands print: `--public-url`, else this
/// machine's name and the configured port, which is right when students reach the server directly.
struct PublicAddress: ParsableArguments {
    @Option(name: .setting(.publicURL), help: .setting(.publicURL)) var publicUrl: String?

    func print(token: String) throws {
        let settings = SettingReader()
        if let configured = publicUrl ?? settings.text(.publicURL) {
            Swift.print("  " + ServerURL.events(base: try ServerURL.validatedBase(configured), token: token))
        } else {
            let port = try settings.port(nil)
            Swift.print("  " + ServerURL.events(base: "http://\(ProcessInfo.processInfo.hostName):\(port)", token: token))
            Swift.print("(If students reach the server by another address, pass --public-url or set PULSEBOARD_PUBLIC_URL.)")
        }
    }
}
