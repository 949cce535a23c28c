// Placeholder; the ClusterAccess target is being written.
