import Foundation

/// RFC 3339 timestamps, parsed and written without locale, calendar or formatter state.
///
/// Written times are always UTC with exactly three fractional digits (`2026-11-28T10:00:00.120Z`), truncated
/// (not rounded) to the millisecond so that a written time never lies in the future of the instant it stands for.
enum RFC3339 {
    /// Writes `date` as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
    static func format(_ date: Date) -> String {
        // Rounding the fraction to 10 µs first absorbs the binary representation error of `Date` (x.12 s is
        // stored as x.119999…, off by up to 2 µs for dates before 2286), which would otherwise cost a whole
        // millisecond when truncating.
        let interval = date.timeIntervalSince1970
        let wholeSeconds = interval.rounded(.down)
        let tensOfMicroseconds = Int64(((interval - wholeSeconds) * 100_000).rounded())
        let totalMilliseconds = Int64(wholeSeconds) * 1000 + tensOfMicroseconds / 100
        let (days, millisecondOfDay) = floorDivide(totalMilliseconds, 86_400_000)
        let (year, month, day) = civil(fromDays: days)
        let hour = millisecondOfDay / 3_600_000
        let minute = millisecondOfDay / 60_000 % 60
        let second = millisecondOfDay / 1000 % 60
        let millisecond = millisecondOfDay % 1000
        return "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))T\(pad(hour, 2)):\(pad(minute, 2)):\(pad(second, 2))"
            + ".\(pad(millisecond, 3))Z"
    }

    /// Reads an RFC 3339 `date-time` (`T` or `t` between date and time, `Z`, `z` or a `±HH:MM` offset, any number
    /// of fractional digits); returns `nil` for anything else, including impossible dates such as February 30.
    static func parse(_ text: String) -> Date? {
        var reader = Reader(bytes: Array(text.utf8))
        guard let year = reader.digits(4), reader.expect("-"),
            let month = reader.digits(2), reader.expect("-"),
            let day = reader.digits(2), reader.expect("T", or: "t"),
            let hour = reader.digits(2), reader.expect(":"),
            let minute = reader.digits(2), reader.expect(":"),
            let second = reader.digits(2)
        else { return nil }
        guard (1...12).contains(month), (1...daysIn(month: month, year: year)).contains(day),
            (0...23).contains(hour), (0...59).contains(minute), (0...60).contains(second)
        else { return nil }
        var nanoseconds = 0
        if reader.expect(".") {
            var count = 0
            while let digit = reader.digit() {
                if count < 9 { nanoseconds = nanoseconds * 10 + digit }
                count += 1
            }
            guard count > 0 else { return nil }
            for _ in count..<max(count, 9) { nanoseconds *= 10 }
        }
        let offsetSeconds: Int64
        if reader.expect("Z", or: "z") {
            offsetSeconds = 0
        } else if let sign = reader.sign(), let offsetHour = reader.digits(2), reader.expect(":"),
            let offsetMinute = reader.digits(2), (0...23).contains(offsetHour), (0...59).contains(offsetMinute)
        {
            offsetSeconds = sign * Int64(offsetHour * 3600 + offsetMinute * 60)
        } else {
            return nil
        }
        guard reader.atEnd else { return nil }
        let days = Self.days(fromYear: Int64(year), month: Int64(month), day: Int64(day))
        let seconds = days * 86_400 + Int64(hour * 3600 + minute * 60 + second) - offsetSeconds
        return Date(timeIntervalSince1970: Double(seconds) + Double(nanoseconds) / 1_000_000_000)
    }

    // MARK: - Civil calendar (proleptic Gregorian, after Howard Hinnant's algorithms)

    private static func days(fromYear year: Int64, month: Int64, day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = floorDivide(y, 400).quotient
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    private static func civil(fromDays days: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let z = days + 719_468
        let era = floorDivide(z, 146_097).quotient
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let shiftedMonth = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * shiftedMonth + 2) / 5 + 1
        let month = shiftedMonth < 10 ? shiftedMonth + 3 : shiftedMonth - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        return (year, month, day)
    }

    private static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    private static func floorDivide(_ value: Int64, _ divisor: Int64) -> (quotient: Int64, remainder: Int64) {
        let quotient = value >= 0 ? value / divisor : -((-value + divisor - 1) / divisor)
        return (quotient, value - quotient * divisor)
    }

    private static func pad(_ value: Int64, _ width: Int) -> String {
        let digits = String(value)
        return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }

    private struct Reader {
        let bytes: [UInt8]
        var index = 0

        var atEnd: Bool { index == bytes.count }

        mutating func digit() -> Int? {
            guard index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) else {
                return nil
            }
            defer { index += 1 }
            return Int(bytes[index] - UInt8(ascii: "0"))
        }

        mutating func digits(_ count: Int) -> Int? {
            var value = 0
            for _ in 0..<count {
                guard let digit = digit() else { return nil }
                value = value * 10 + digit
            }
            return value
        }

        mutating func expect(_ character: Unicode.Scalar, or alternative: Unicode.Scalar? = nil) -> Bool {
            guard index < bytes.count else { return false }
            let byte = bytes[index]
            guard byte == UInt8(ascii: character) || alternative.map({ byte == UInt8(ascii: $0) }) == true else {
                return false
            }
            index += 1
            return true
        }

        mutating func sign() -> Int64? {
            if expect("+") { return 1 }
            if expect("-") { return -1 }
            return nil
        }
    }
}
