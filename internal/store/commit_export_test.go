package store

// RelaxedCommit exposes relaxedCommit to the package's external tests.
const RelaxedCommit = relaxedCommit
