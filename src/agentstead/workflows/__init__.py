"""Workflows: named steps (agent, tool, branch, parallel, approval) in a JSON
definition, validated at save time and compiled to a LangGraph graph.

- `definition`: the definition as dataclasses.
- `validate`: JSON Schema and graph checks, as (JSON pointer, message) problems.
- `templates`, `expressions`, `references`: the safe template and condition languages.
- `compile`: the LangGraph graph; steps run through an injected `execute_step`.
"""
