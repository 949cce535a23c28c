import Foundation
import ReaperCore
import Testing

@Suite("DurationText")
struct DurationTextTests {
    @Test("parses policy durations", arguments: [(String, Double)]([
        ("90s", 90.0), ("30m", 1800), ("1h30m", 5400), ("2d", 172_800), ("500ms", 0.5), ("0", 0),
        ("1.5h", 5400), (" 45s ", 45), ("1h0m30s", 3630), ("2m", 120),
    ]))
    func parses(text: String, seconds: Double) {
        #expect(DurationText.parse(text) == seconds)
    }

    @Test("refuses what is not a duration, negative ones included", arguments: [
        "", " ", "30", "-5m", "-1h30m", "m", "5x", "5mm", "1h-30m", "30 m", "1h 30m", "h1", "1..5s", "+5m",
        "1e3s", "inf", "NaN", "30m,", "٣m",
    ])
    func refuses(text: String) {
        #expect(DurationText.parse(text) == nil)
    }

    @Test("formats durations for people", arguments: [(Double, String)]([
        (90.0, "1m30s"), (5400, "1h30m"), (0, "0s"), (45, "45s"), (1800, "30m"), (3600, "1h"),
        (90_000, "1d1h"), (3 * 86400 + 60, "3d"), (59.9, "59s"), (-90, "-1m30s"),
    ]))
    func formats(seconds: Double, text: String) {
        #expect(DurationText.format(seconds) == text)
    }

    @Test("format then parse gives the duration back", arguments: [1.0, 59, 60, 61, 3599, 3600, 5400, 86400, 90_000])
    func roundTrip(seconds: Double) {
        #expect(DurationText.parse(DurationText.format(seconds)) == seconds)
    }
}

@Suite("RFC3339")
struct RFC3339Tests {
    @Test("parses Kubernetes times", arguments: [
        ("2026-11-18T11:06:40Z", 0.0), ("2026-11-18T11:06:40.5Z", 0.5), ("2026-11-18T12:06:40+01:00", 0),
        ("2026-11-18T11:06:40.000000001Z", 0), ("2026-11-18T06:06:40-05:00", 0),
    ])
    func parses(text: String, offset: Double) throws {
        let date = try #require(RFC3339.parse(text))
        #expect(abs(date.timeIntervalSince(Fixture.now) - offset) < 0.001)
    }

    @Test("refuses what is not RFC 3339", arguments: [
        "", "yesterday", "2026-11-18", "2026-11-18T11:06:40", "1795000000", "2026-11-18T25:06:40Z",
        // Impossible days and times must not roll over into valid ones (2026-02-30 is not March 2).
        "2026-02-30T11:06:40Z", "2026-02-29T11:06:40Z", "2026-04-31T11:06:40Z", "2026-00-10T11:06:40Z", "2026-11-00T11:06:40Z",
        "2026-13-01T11:06:40Z", "2026-11-18T11:60:00Z", "2026-11-18T11:06:61Z", "2026-11-18T24:00:00Z",
    ])
    func refuses(text: String) {
        #expect(RFC3339.parse(text) == nil)
    }

    @Test("a leap day of a leap year is a day")
    func leapDay() {
        #expect(RFC3339.parse("2028-02-29T00:00:00Z") == Date(timeIntervalSince1970: 1_835_395_200))
    }

    @Test("formats in UTC with a Z")
    func formats() {
        #expect(RFC3339.format(Fixture.now) == "2026-11-18T11:06:40Z")
        #expect(RFC3339.parse(RFC3339.format(Fixture.now)) == Fixture.now)
    }
}

@Suite("PluginName")
struct PluginNameTests {
    @Test("either form names the same plugin", arguments: [
        ("kubernetes.io/empty-dir", "kubernetes.io~empty-dir"), ("kubernetes.io/csi", "kubernetes.io~csi"),
        ("example.com/fancy", "example.com~fancy"),
    ])
    func forms(unescaped: String, escaped: String) {
        #expect(PluginName(unescaped) == PluginName(escaped))
        #expect(PluginName(unescaped).escaped == escaped)
        #expect(PluginName(escaped).unescaped == unescaped)
        #expect(PluginName(escaped).description == unescaped)
    }

    @Test("the local kinds, and only they, are local")
    func localKinds() {
        for name in ["empty-dir", "configmap", "secret", "projected", "downward-api"] {
            #expect(PluginName("kubernetes.io/\(name)").isLocal, "\(name)")
        }
        for name in ["kubernetes.io/nfs", "kubernetes.io/csi", "kubernetes.io/rbd", "kubernetes.io/host-path", "example.com/empty-dir"] {
            #expect(!PluginName(name).isLocal, "\(name)")
        }
        #expect(PluginName("kubernetes.io/csi").isCSI)
        #expect(!PluginName.emptyDir.isCSI)
    }

    @Test("JSON writes the unescaped form and reads either")
    func json() throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .withoutEscapingSlashes
        let data = try encoder.encode([PluginName.emptyDir, PluginName("kubernetes.io/csi")])
        #expect(String(decoding: data, as: UTF8.self) == #"["kubernetes.io/empty-dir","kubernetes.io/csi"]"#)
        let decoded = try JSONDecoder().decode([PluginName].self, from: Data(#"["kubernetes.io/csi","kubernetes.io~csi"]"#.utf8))
        #expect(decoded == [.csi, .csi])
    }
}

@Suite("PodDirectoryKind")
struct PodDirectoryKindTests {
    @Test("classifies names under pods/", arguments: [
        ("5e1f0000-0000-4000-8000-000000000001", PodDirectoryKind?.some(.uid)),
        ("3f2a9c0d4b5e6f708192a3b4c5d6e7f8", .configHash),
        ("5E1F0000-0000-4000-8000-000000000001", nil),
        ("3F2A9C0D4B5E6F708192A3B4C5D6E7F8", nil),
        ("3f2a9c0d4b5e6f708192a3b4c5d6e7f", nil),
        ("3f2a9c0d4b5e6f708192a3b4c5d6e7f80", nil),
        ("5e1f0000-0000-4000-8000-00000000000g", nil),
        ("5e1f00000-000-4000-8000-000000000001", nil),
        ("5e1f0000-0000-4000-8000-0000000000012", nil),
        ("lost+found", nil), ("README", nil), ("", nil), ("not-a-pod", nil),
    ])
    func classify(name: String, kind: PodDirectoryKind?) {
        #expect(PodDirectoryKind(directoryName: name) == kind)
    }
}

@Suite("Reason")
struct ReasonTests {
    static let letGo: Set<Reason> = [.podTerminated, .orphan, .idle, .willUnmount, .diskPressure]

    @Test("codes are unique kebab-case")
    func codes() {
        let codes = Reason.allCases.map(\.rawValue)
        #expect(Set(codes).count == codes.count)
        for code in codes {
            #expect(code.wholeMatch(of: /[a-z]+(-[a-z]+)*/) != nil, "\(code)")
        }
    }

    @Test("only the let-go reasons do not keep; every reason has a sentence")
    func keeps() {
        for reason in Reason.allCases {
            #expect(reason.keeps == !Self.letGo.contains(reason), "\(reason.rawValue)")
            #expect(!reason.summary.isEmpty)
        }
    }

    @Test("every reason code is documented in the README")
    func readmeListsEveryCode() throws {
        let readme = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("README.md")
        let text = try String(contentsOf: readme, encoding: .utf8)
        let missing = Reason.allCases.filter { !text.contains("`\($0.rawValue)`") }
        #expect(missing.isEmpty, "README.md does not list: \(missing.map(\.rawValue))")
    }
}
