import Foundation
import PolicyFile
import ReaperCore
import Testing

@Suite("Pressure policy section")
struct PressurePolicyTests {
    @Test("absent: no pressure mode; present: defaults, then every field")
    func accepted() throws {
        #expect(try PolicyLoader.parse("{}", file: "p.yaml").pressure == nil)
        let defaults = try #require(try PolicyLoader.parse("pressure: {}", file: "p.yaml").pressure)
        #expect(defaults == Policy.Pressure())
        #expect(defaults.available == nil && defaults.margin == 5 && defaults.idleAfter == 300 && defaults.hysteresis == .percent(5))
        let policy = try PolicyLoader.parse("""
            pressure:
              available: 10Gi
              inodesAvailable: 8%
              margin: 3
              hysteresis: 2Gi
              idleAfter: 2m
              maxReapsPerCycle: 500
              checkInterval: 30s
            """, file: "p.yaml")
        let pressure = try #require(policy.pressure)
        #expect(pressure.available == .absolute(10 << 30))
        #expect(pressure.inodesAvailable == .percent(8))
        #expect(pressure.margin == 3)
        #expect(pressure.hysteresis == .absolute(2 << 30))
        #expect(pressure.idleAfter == 120)
        #expect(pressure.maxReapsPerCycle == 500)
        #expect(pressure.checkInterval == 30)
        #expect(defaults.checkInterval == 10)
    }

    @Test("bad values are refused naming the field", arguments: [
        ("pressure: {available: 150%}", "pressure.available"),
        ("pressure: {available: lots}", "pressure.available"),
        ("pressure: {inodesAvailable: -5%}", "pressure.inodesAvailable"),
        ("pressure: {margin: 80}", "pressure.margin"),
        ("pressure: {idleAfter: 0}", "pressure.idleAfter"),
        ("pressure: {idleAfter: 5}", "pressure.idleAfter"),
        ("pressure: {maxReapsPerCycle: -1}", "pressure.maxReapsPerCycle"),
        ("pressure: {idle: 5m}", "pressure.idle"),
        ("pressure: {checkInterval: 0s}", "pressure.checkInterval"),
        ("pressure: {checkInterval: 500ms}", "pressure.checkInterval"),
        ("pressure: 15%", "pressure"),
    ])
    func refused(yaml: String, field: String) {
        let error = policyError { () throws(PolicyError) in try PolicyLoader.parse(yaml, file: "p.yaml") }
        #expect(error?.field == field, "\(String(describing: error))")
        #expect(error?.description.contains("p.yaml: \(field)") == true, "\(String(describing: error))")
    }
}
