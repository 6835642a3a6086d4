//! One read-modify-write of a stored session, as the storage benches time it.

use warden::runtime::calls::StoragePlugin;

/// Load a session, change it, save it with its revision (retrying on conflict).
pub fn update(store: &StoragePlugin, id: &str) {
    loop {
        let mut session = store.load(id).unwrap();
        session.last_accessed_ms += 1;
        match store.save(&session, Some(session.revision)) {
            Ok(_) => return,
            Err(e) if e.to_string().contains("conflict") => continue,
            Err(e) => panic!("{e}"),
        }
    }
}
