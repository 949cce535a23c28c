import Foundation
import Logging
import ReaperAgent
import ReaperCore
import Testing
import TestSupport

/// The pressure threshold's sources: the policy, the kubelet's eviction
/// thresholds plus the margin, else 15%.
@Suite("Disk pressure gauge")
struct DiskPressureGaugeTests {
    @Test("kubelet config: the larger of evictionHard and evictionSoft, plus the margin")
    func kubeletThresholds() throws {
        let kubelet = try KubeletEvictionThresholds.parse("""
            apiVersion: kubelet.config.k8s.io/v1beta1
            kind: KubeletConfiguration
            evictionHard:
              memory.available: 100Mi
              nodefs.available: "10%"
              nodefs.inodesFree: "5%"
            evictionSoft:
              nodefs.available: "12%"
            """, file: "config.yaml")
        #expect(kubelet.available == .percent(12))
        #expect(kubelet.inodesFree == .percent(5))
        let threshold = DiskPressureGauge.threshold(for: Policy.Pressure(), kubelet: kubelet, totalBytes: 1000, totalInodes: 1000)
        #expect(threshold.available == .percent(17))
        #expect(threshold.inodesAvailable == .percent(10))
        #expect(threshold.source == "kubelet config + margin")
        // A size gets the margin as a share of the filesystem.
        let sized = try KubeletEvictionThresholds.parse("evictionHard:\n  nodefs.available: 1Gi\n", file: "c.yaml")
        #expect(DiskPressureGauge.threshold(for: Policy.Pressure(), kubelet: sized, totalBytes: 100 << 30, totalInodes: 1).available == .absolute(6 << 30))
    }

    @Test("no kubelet config: 15% (inodes 10%); the policy's own amount wins")
    func defaults() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        #expect(try KubeletEvictionThresholds.load(path: directory.appending("missing.yaml")) == nil)
        let fallback = DiskPressureGauge.threshold(for: Policy.Pressure(), kubelet: nil, totalBytes: 1000, totalInodes: 1000)
        #expect(fallback.available == .percent(15) && fallback.inodesAvailable == .percent(10))
        var settings = Policy.Pressure()
        settings.available = .absolute(5 << 30)
        let kubelet = KubeletEvictionThresholds(available: .percent(10), inodesFree: nil)
        #expect(DiskPressureGauge.threshold(for: settings, kubelet: kubelet, totalBytes: 1000, totalInodes: 1000).available == .absolute(5 << 30))
    }

    @Test("a bad kubelet value is one line naming the file and field")
    func badValue() {
        #expect {
            try KubeletEvictionThresholds.parse("evictionHard:\n  nodefs.available: lots\n", file: "/etc/k/config.yaml")
        } throws: { error in
            "\(error)" == "/etc/k/config.yaml: evictionHard.nodefs.available: not a percentage or a quantity (got \"lots\")"
        }
    }

    @Test("the gauge measures a real directory; no pressure section: nothing")
    func measures() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let gauge = DiskPressureGauge(kubeletRoot: directory.path, kubeletConfig: directory.appending("none.yaml"))
        let logger = Logger(label: "test")
        let inventory = NodeInventory(kubeletRoot: directory.path, pods: [], errors: [])
        #expect(gauge.assess(policy: Policy(), inventory: inventory, now: Date(), logger: logger) == nil)
        var policy = Policy()
        policy.pressure = Policy.Pressure()
        policy.pressure?.available = .percent(100)
        let pressure = try #require(gauge.assess(policy: policy, inventory: inventory, now: Date(), logger: logger))
        #expect(pressure.elsewhere.isEmpty)
        let assessment = pressure.kubeletRoot
        #expect(assessment.filesystem.device?.contains(":") == true)
        #expect(assessment.filesystem.totalBytes > 0)
        #expect(assessment.active, "100% free is never reached on a used filesystem")
        policy.pressure?.available = .percent(0)
        policy.pressure?.inodesAvailable = .percent(0)
        policy.pressure?.hysteresis = .percent(0)
        #expect(gauge.assess(policy: policy, inventory: inventory, now: Date(), logger: logger)?.active == false)
    }

    @Test("the kubelet config is parsed again when it changes, even to the same size, and a broken one falls back to 15%")
    func kubeletConfigFollowsTheFile() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let config = directory.appending("kubelet-config.yaml")
        let gauge = DiskPressureGauge(kubeletRoot: directory.path, kubeletConfig: config)
        let inventory = NodeInventory(kubeletRoot: directory.path, pods: [], errors: [])
        var policy = Policy()
        policy.pressure = Policy.Pressure()
        func threshold() throws -> Double {
            let root = try #require(gauge.assess(policy: policy, inventory: inventory, now: Date(), logger: Logger(label: "test"))).kubeletRoot
            return (Double(root.thresholdBytes) * 100 / Double(root.filesystem.totalBytes) * 10).rounded() / 10
        }
        #expect(try threshold() == 15, "no file: 15%")
        try "evictionHard:\n  nodefs.available: \"9%\"\n".write(toFile: config, atomically: false, encoding: .utf8)
        #expect(try threshold() == 14)
        #expect(try threshold() == 14, "unchanged")
        try "evictionHard:\n  nodefs.available: \"7%\"\n".write(toFile: config, atomically: false, encoding: .utf8)
        #expect(try threshold() == 12, "same size, new content")
        try "evictionHard:\n  nodefs.available: \"lots\"\n".write(toFile: config, atomically: true, encoding: .utf8)
        #expect(try threshold() == 15, "unreadable: the 15% default")
    }
}
