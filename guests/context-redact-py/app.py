"""Warden context builder in Python: the default plan rules of
guests/context-default, with secrets redacted from the new prompt, the
replayed turns and the recorded prompt. The logic lives in redact.py; this
file only maps it onto the `context-builder` world's bindings."""

from componentize_py_types import Err

import redact
from wit_world import exports
from wit_world.imports import config, log, types


class Context(exports.Context):
    def build(self, session, prompt, reset):
        try:
            settings = redact.parse_settings(config.settings())
        except redact.SettingsError as e:
            raise Err(types.PluginError_Invalid(str(e)))
        thread_id = session.agent_thread_id if session is not None else None
        turns = [(t.prompt, t.response) for t in session.turns] if session is not None else []
        counts = {}
        planned = redact.plan(settings, thread_id, turns, prompt, reset, counts)
        if counts:
            summary = ", ".join(f"{kind} {n}" for kind, n in sorted(counts.items()))
            log.log(log.Level.INFO, f"{redact.PLUGIN}: redacted secrets ({summary})")
        if planned[0] == "resume":
            _, thread, text, recorded = planned
            return types.Plan_Resume(types.ResumePlan(thread_id=thread, prompt=text, recorded_prompt=recorded))
        _, text, recorded = planned
        return types.Plan_Fresh(types.FreshPlan(prompt=text, recorded_prompt=recorded))
