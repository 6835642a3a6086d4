//! Task records: one file each in `tasks.d/`, through the SDK's `task_files`.

warden_plugin::storage::task_files::task_store_in_files!(crate::Store);
