package store

// RelaxedCommit exposes relaxedCommit to the package's external tests.
const RelaxedCommit = relaxedCommit

// Writes reports how many writes w has made.
func (w *MessageWriter) Writes() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.writes
}
