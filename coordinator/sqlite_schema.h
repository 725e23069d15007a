// The coordinator database's schema: the tables of SqliteStorage and the
// audit log, versioned with PRAGMA user_version, and the migrations from
// every earlier version. Not thread-safe on its own: call it with the
// connection's lock held, before the storage is shared.
#ifndef FEDMI_COORDINATOR_SQLITE_SCHEMA_H_
#define FEDMI_COORDINATOR_SQLITE_SCHEMA_H_

#include "absl/status/status.h"
#include "coordinator/sqlite_connection.h"

namespace fedmi {

// Creates the schema in an empty database or migrates an older one, in one
// transaction. FailedPrecondition for a schema newer than this coordinator
// or a database with other tables and no fedmi version.
absl::Status CreateOrMigrateSchema(SqliteConnection& db) ABSL_EXCLUSIVE_LOCKS_REQUIRED(db.mu());

}  // namespace fedmi

#endif  // FEDMI_COORDINATOR_SQLITE_SCHEMA_H_
