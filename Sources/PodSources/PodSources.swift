// Placeholder; the PodSources target is being written.
