//! The `process` interface: approve, spawn, and operate children held in
//! the call's resource table, against the plugin's grant and child caps.

use std::time::Duration;

use warden_permissions::ProcessPolicy;
use wasmtime::component::{HasData, Resource, ResourceTable};

use super::{HostChild, LiveChildren, ReadResult, Slot, Stream};
use crate::capabilities::{Who, host_time};
use crate::contract::HostError;
use crate::contract::bindings::agent::warden::plugin::process::{
    self, Child, OutputLine, OutputStream, ReadResult as WitReadResult, SpawnRequest, StdinSource,
};
use crate::contract::bindings::types;
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
    ) -> Result<R, HostError> {
        let table = &mut *self.table;
        host_time(self.control, |control| Ok(op(table.get_mut(&entry(child))?, control)?))
    }
}

impl process::Host for ProcessView<'_> {
    fn spawn(&mut self, request: SpawnRequest) -> Result<Resource<Child>, HostError> {
        let shown = format!("{} {}", request.program, request.args.join(" "));
        let who = self.who;
        let Some(policy) = self.policy else {
            return Err(HostError::Plugin(who.refused(
                "spawn",
                &shown,
                PluginError::Denied(format!(
                    "plugin `{}` may not run programs: no program is granted under [plugins.{}]",
                    who.plugin, who.role
                )),
            )));
        };
        let slots = self.child_slots().map_err(|e| who.refused("spawn", &shown, e))?;
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
            let child = spawned()?;
            Ok(Resource::new_own(table.push(child)?.rep()))
        })
    }
}

impl process::HostChild for ProcessView<'_> {
    fn pid(&mut self, child: Resource<Child>) -> wasmtime::Result<u32> {
        Ok(self.table.get(&entry(&child))?.pid())
    }

    fn read_line(&mut self, child: Resource<Child>, timeout_ms: u32) -> Result<WitReadResult, HostError> {
        let timeout = Duration::from_millis(timeout_ms.into());
        let read = self.child(&child, |c, control| c.read_line(timeout, control))?;
        Ok(match read {
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
        })
    }

    fn wait(&mut self, child: Resource<Child>, timeout_ms: u32) -> Result<Option<i32>, HostError> {
        let timeout = Duration::from_millis(timeout_ms.into());
        self.child(&child, |c, control| c.wait(timeout, control))
    }

    fn kill(&mut self, child: Resource<Child>) -> Result<(), HostError> {
        self.child(&child, |c, _| c.kill())
    }

    fn drop(&mut self, child: Resource<Child>) -> wasmtime::Result<()> {
        let child = self.table.delete(Resource::<HostChild>::new_own(child.rep()))?;
        host_time(self.control, |_| drop(child));
        Ok(())
    }
}

impl types::Host for ProcessView<'_> {
    fn convert_plugin_error(&mut self, error: HostError) -> wasmtime::Result<PluginError> {
        error.into_plugin_error()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::role::Role;
    use crate::control::CancelFlag;
    use process::{Host as _, HostChild as _};
    use types::Host as _;

    #[test]
    fn a_handle_the_table_does_not_hold_traps_instead_of_answering() {
        let (mut table, mut control) = (ResourceTable::new(), CallControl::new(None, CancelFlag::new()));
        let children = LiveChildren::default();
        let mut view = ProcessView {
            who: Who { plugin: "p", role: Role::AgentDriver },
            policy: None,
            audit: false,
            limits: ChildLimits { output_cap: 1, per_call: 1, per_plugin: 1 },
            plugin_children: &children,
            call_children: &children,
            table: &mut table,
            control: &mut control,
        };
        let unknown = || Resource::<Child>::new_borrow(7);
        assert!(view.pid(unknown()).is_err(), "pid() of an unknown handle traps, never 0");
        let waited = view.wait(unknown(), 0).unwrap_err();
        assert!(matches!(waited, HostError::Host(_)), "{waited:?}");
        assert!(view.convert_plugin_error(waited).is_err(), "a host failure converts to a trap");
        let refused = view.spawn(SpawnRequest {
            program: "sh".into(),
            args: Vec::new(),
            env: Vec::new(),
            cwd: None,
            stdin: StdinSource::Null,
        });
        let refused = view.convert_plugin_error(refused.unwrap_err()).unwrap();
        assert!(matches!(refused, PluginError::Denied(_)), "a refusal still reaches the guest: {refused:?}");
    }
}
