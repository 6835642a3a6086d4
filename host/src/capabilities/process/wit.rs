//! The `process` interface: approve, spawn, and operate children held in
//! the call's resource table, against the plugin's grant and child caps.

use std::time::Duration;

use warden_permissions::ProcessPolicy;
use wasmtime::component::{HasData, Resource, ResourceTable};

use super::{HostChild, LiveChildren, ReadResult, Slot, Stream};
use crate::capabilities::{Who, host_time};
use crate::contract::bindings::agent::warden::plugin::process::{
    self, Child, OutputLine, OutputStream, ReadResult as WitReadResult, SpawnRequest, StdinSource,
};
use crate::control::CallControl;
use crate::types::PluginError;

/// The caps on a plugin's children.
#[derive(Clone, Copy, Debug)]
pub struct ChildLimits {
    /// Bytes of stdout (and of stderr) read from one child.
    pub output_cap: usize,
    /// Live children one call may hold.
    pub per_call: usize,
    /// Live children the plugin may hold over all its calls.
    pub per_plugin: usize,
}

/// What `process` needs from a call: the grant, the caps and their counts,
/// the table that holds the children, and the call's control.
pub struct ProcessView<'a> {
    pub who: Who<'a>,
    /// What the plugin may run; `None` grants nothing.
    pub policy: Option<&'a ProcessPolicy>,
    /// Log every spawn, not only refusals.
    pub audit: bool,
    pub limits: ChildLimits,
    /// Children the plugin holds over all its calls.
    pub plugin_children: &'a LiveChildren,
    /// Children this call holds.
    pub call_children: &'a LiveChildren,
    pub table: &'a mut ResourceTable,
    pub control: &'a mut CallControl,
}

/// Links `process` to a call's [`ProcessView`].
pub struct Process;

impl HasData for Process {
    type Data<'a> = ProcessView<'a>;
}

/// The table entry behind a guest's `child` handle.
fn entry(child: &Resource<Child>) -> Resource<HostChild> {
    Resource::new_borrow(child.rep())
}

impl ProcessView<'_> {
    /// A place in this call's and this plugin's child caps, or an error naming the cap.
    fn child_slots(&self) -> Result<Vec<Slot>, PluginError> {
        let (name, role) = (self.who.plugin, self.who.role);
        let call = self.call_children.try_take(self.limits.per_call).ok_or_else(|| {
            PluginError::Busy(format!(
                "plugin `{name}` already holds {} live children in this call, its limit; drop or \
                 wait for one first, or raise `max-children-per-call` under [plugins.{role}]",
                self.limits.per_call
            ))
        })?;
        let plugin = self.plugin_children.try_take(self.limits.per_plugin).ok_or_else(|| {
            PluginError::Busy(format!(
                "plugin `{name}` already holds {} live children over all its calls, its limit; \
                 retry when one has ended, or raise `max-children` under [plugins.{role}]",
                self.limits.per_plugin
            ))
        })?;
        Ok(vec![call, plugin])
    }

    /// Run `op` on the child behind `child`. A handle the table does not hold
    /// is a host bug (the component model checks the guest's handles): it traps.
    fn child<R>(
        &mut self,
        child: &Resource<Child>,
        op: impl FnOnce(&mut HostChild, &CallControl) -> Result<R, PluginError>,
    ) -> wasmtime::Result<Result<R, PluginError>> {
        let table = &mut *self.table;
        host_time(self.control, |control| {
            let child = table.get_mut(&entry(child))?;
            Ok(op(child, control))
        })
    }
}

impl process::Host for ProcessView<'_> {
    fn spawn(&mut self, request: SpawnRequest) -> wasmtime::Result<Result<Resource<Child>, PluginError>> {
        let shown = format!("{} {}", request.program, request.args.join(" "));
        let who = self.who;
        let Some(policy) = self.policy else {
            return Ok(Err(who.refused(
                "spawn",
                &shown,
                PluginError::Denied(format!(
                    "plugin `{}` may not run programs: no program is granted under [plugins.{}]",
                    who.plugin, who.role
                )),
            )));
        };
        let slots = match self.child_slots() {
            Ok(slots) => slots,
            Err(e) => return Ok(Err(who.refused("spawn", &shown, e))),
        };
        let (audit, output_cap) = (self.audit, self.limits.output_cap);
        let table = &mut *self.table;
        host_time(self.control, |_| {
            let spawned = || -> Result<HostChild, PluginError> {
                let approved = policy
                    .approve(
                        &request.program,
                        &request.args,
                        &request.env,
                        request.cwd.as_deref(),
                        std::env::vars(),
                    )
                    .map_err(|e| who.refused("spawn", &shown, e.into()))?;
                if audit {
                    tracing::info!(plugin = %who.plugin, program = %approved.executable.display(),
                        args = ?approved.args, cwd = %approved.cwd.display(), "audit: spawn");
                }
                let stdin = match request.stdin {
                    StdinSource::Null => None,
                    StdinSource::Bytes(bytes) => Some(bytes),
                };
                HostChild::spawn(approved, stdin, output_cap, slots)
            };
            match spawned() {
                Ok(child) => Ok(Ok(Resource::new_own(table.push(child)?.rep()))),
                Err(e) => Ok(Err(e)),
            }
        })
    }
}

impl process::HostChild for ProcessView<'_> {
    fn pid(&mut self, child: Resource<Child>) -> wasmtime::Result<u32> {
        Ok(self.table.get(&entry(&child))?.pid())
    }

    fn read_line(
        &mut self,
        child: Resource<Child>,
        timeout_ms: u32,
    ) -> wasmtime::Result<Result<WitReadResult, PluginError>> {
        let timeout = Duration::from_millis(timeout_ms.into());
        let read = self.child(&child, |c, control| c.read_line(timeout, control))?;
        Ok(read.map(|read| match read {
            ReadResult::Line { stream, text, truncated } => WitReadResult::Line(OutputLine {
                stream: match stream {
                    Stream::Stdout => OutputStream::Stdout,
                    Stream::Stderr => OutputStream::Stderr,
                },
                text,
                truncated,
            }),
            ReadResult::Pending => WitReadResult::Pending,
            ReadResult::Closed => WitReadResult::Closed,
        }))
    }

    fn wait(
        &mut self,
        child: Resource<Child>,
        timeout_ms: u32,
    ) -> wasmtime::Result<Result<Option<i32>, PluginError>> {
        let timeout = Duration::from_millis(timeout_ms.into());
        self.child(&child, |c, control| c.wait(timeout, control))
    }

    fn kill(&mut self, child: Resource<Child>) -> wasmtime::Result<Result<(), PluginError>> {
        self.child(&child, |c, _| c.kill())
    }

    fn drop(&mut self, child: Resource<Child>) -> wasmtime::Result<()> {
        let child = self.table.delete(Resource::<HostChild>::new_own(child.rep()))?;
        host_time(self.control, |_| drop(child));
        Ok(())
    }
}
