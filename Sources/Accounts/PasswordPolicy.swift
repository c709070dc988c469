import PulseboardKernel

/// What a new password must be: long enough to resist guessing, short enough for bcrypt (which
/// reads only the first 72 bytes, so a longer one would be silently cut), printable, and not one
/// of the passwords every guessing list starts with.
package enum PasswordPolicy {
    static let minimumCharacters = 10
    static let maximumBytes = 72

    /// The first entries of every guessing list that are long enough to pass the length rule.
    /// Compared case-insensitively.
    static let common: Set<String> = [
        "1234567890", "12345678910", "123456789a", "0123456789", "0987654321", "1111111111", "0000000000", "1q2w3e4r5t",
        "1qaz2wsx3edc", "qwertyuiop", "qwerty1234", "qwerty12345", "qwerty123456", "asdfghjkl1", "zxcvbnm123", "password12",
        "password123", "password1234", "password!1", "passw0rd123", "p@ssw0rd123", "iloveyou12", "iloveyou123", "letmein123",
        "welcome123", "welcome1234", "changeme123", "administrator", "admin12345", "admin123456", "football123",
        "baseball123", "princess123", "sunshine123", "superman123", "trustno1234", "monkey12345", "dragon12345",
        "abcdefghij", "abcd123456", "abc1234567", "starwars123", "whatever123", "pulseboard", "pulseboard1",
        "pulseboard123", "jupyterlab", "jupyter123", "student123", "teacher123", "instructor", "classroom1",
    ]

    /// Why `password` is refused, or nil when it is acceptable.
    static func problem(with password: String) -> String? {
        if password.count < minimumCharacters { return "A password has at least \(minimumCharacters) characters." }
        if password.utf8.count > maximumBytes { return "A password has at most \(maximumBytes) bytes (bcrypt reads no more)." }
        if password.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) {
            return "A password has no control characters."
        }
        if common.contains(password.lowercased()) { return "This password is among the most common ones; choose another." }
        return nil
    }
}
