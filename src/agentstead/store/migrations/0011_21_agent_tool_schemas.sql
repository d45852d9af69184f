-- 0011 (issue 21): what an agent version knew of its MCP tools. A version names
-- its tools in `tools`; for each MCP tool (`server.tool`) this holds the
-- description and JSON schema the server offered when the version was saved,
-- as {name: {description, parameters}}: the model is shown exactly those, even
-- after the server changes its tools. Built-in tools are described by the code.
ALTER TABLE agent_versions ADD COLUMN tool_schemas TEXT NOT NULL DEFAULT '{}';
