/// The release version, the same string as the repository's `VERSION` file,
/// which the Makefile stamps into the Debian package and the image. A test
/// (`PackagingTests`, "--version") fails when the two differ, so a bump edits
/// both; a checked-in constant needs no build plugin and no generated source.
public enum VolumeReaperVersion {
    public static let current = "0.1.0"
}
