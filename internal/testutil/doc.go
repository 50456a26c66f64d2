// Package testutil holds helpers shared by this project's tests: building and
// running the C workload in workload/, whose calls of the mlock family are
// known in advance, parsing what it reports, and skipping tests that need
// root.
//
// Only tests import it; it is internal so that nothing outside the module can.
package testutil
