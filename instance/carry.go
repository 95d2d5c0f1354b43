package instance

// Carry is the state a lifecycle workflow hands to its next run on Continue-As-New. It is defined by the
// lifecycle workflow (workflows/) and lives here only so StartInput can name it.
type Carry struct{}
