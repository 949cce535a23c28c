/// The in-cluster service account, as client-go's `InClusterConfig` reads
/// it: the server from `KUBERNETES_SERVICE_HOST`/`PORT`, the token and CA
/// from the service account directory (the token re-read as it rotates).
struct InClusterLoader {
    let settings: ClusterAccessSettings

    func load() throws(ClusterAccessError) -> AccessProfile {
        let environment = settings.environment
        guard let host = environment["KUBERNETES_SERVICE_HOST"], !host.isEmpty else {
            throw ClusterAccessError(
                file: "environment", field: "KUBERNETES_SERVICE_HOST",
                "not set: no kubeconfig was given (podSource.kubeconfig) and the agent does not run in a pod"
            )
        }
        guard let port = environment["KUBERNETES_SERVICE_PORT"], let number = Int(port), (1...65535).contains(number) else {
            throw ClusterAccessError(
                file: "environment", field: "KUBERNETES_SERVICE_PORT",
                "\(environment["KUBERNETES_SERVICE_PORT"].map { "\"\($0.prefix(20))\" is not a port" } ?? "not set") (KUBERNETES_SERVICE_HOST is set)"
            )
        }
        let directory = settings.serviceAccountDirectory
        let server = try ServerURL.normalize(ServerURL.make(host: host, port: String(number)), file: "environment", field: "KUBERNETES_SERVICE_HOST")
        var profile = AccessProfile(server: server, origin: "in-cluster service account")
        profile.authority = CredentialMaterial(content: .file(directory + "/ca.crt"), origin: directory, field: "ca.crt")
        profile.token = .file(CredentialMaterial(content: .file(directory + "/token"), origin: directory, field: "token"))
        return profile
    }
}
