import Testing

/// Holds the shared throwaway PostgreSQL for the duration of a suite, so that the server lives
/// while any suite may use it and is stopped and deleted after the last one (no cluster is left
/// in the temporary folder). Suites that never ask for a PostgreSQL database start nothing.
struct ThrowawayPostgres: SuiteTrait, TestScoping {
    func provideScope(for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void) async throws {
        await TestPostgres.shared.hold()
        do {
            try await function()
        } catch {
            await TestPostgres.shared.letGo()
            throw error
        }
        await TestPostgres.shared.letGo()
    }
}

extension Trait where Self == ThrowawayPostgres {
    static var throwawayPostgres: Self { ThrowawayPostgres() }
}
