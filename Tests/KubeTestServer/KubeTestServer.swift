// Placeholder; the test server is being written.
