//! Helpers shared by this module's tests.

use std::os::fd::OwnedFd;

/// Everything a pipe gives until end of file.
pub fn read_to_end(pipe: &OwnedFd) -> Vec<u8> {
    let (mut all, mut buffer) = (Vec::new(), [0u8; 256]);
    loop {
        match rustix::io::read(pipe, &mut buffer) {
            Ok(0) => return all,
            Ok(n) => all.extend_from_slice(&buffer[..n]),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => panic!("reading a pipe: {e}"),
        }
    }
}
