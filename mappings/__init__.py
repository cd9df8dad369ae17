"""The unified model: pure functions from Jira and CRM records to customers, progress and flags.

No I/O here: values in, values out. The entry points:

- :func:`mappings.merge.merge` - raw Jira issues and CRM-neutral CRM records -> :class:`MergeResult`
  (customers, work items, projects, links and link problems, progress reports, satisfaction
  flags, segment rollups), as of a given time;
- :func:`mappings.merge.plan` - a merge result, the ledgers of what was last written and
  (optionally) what each side holds now -> the :class:`Plan` of writes that changed.

The :class:`mappings.rules.Rules` they apply are plain values, built from the validated
config by ``sync.config.Config.mapping_rules`` (a user's values are checked there).

Modules, one concern each: ``model`` (the frozen values), ``rules`` (the rules), ``dates`` and
``ids`` (vendor values), ``normalise_jira``, ``normalise_crm``, ``linking``, ``progress``,
``health``, ``satisfaction``, ``rollup``, ``text`` (the English), ``desired`` (what each side
should hold), ``writes`` (plan values), ``plan`` (the diff), ``merge`` (the pipeline).
Import from the modules (``from mappings.merge import merge, plan``): the package itself
re-exports nothing, so a function never shadows a module of the same name.
"""
