#ifndef PV_MCP_H
#define PV_MCP_H

/*
 * pivota-mcp: a Model Context Protocol server over stdio (JSON-RPC
 * 2.0, one message per line) whose tools call the Pivota agent API
 * over HTTP with the agent's key.  See pv_mcp.c.
 */

/*
 * The program: reads PIVOTA_API_KEY (required) and PIVOTA_API_URL
 * (default http://127.0.0.1:8080), answers messages from stdin on
 * stdout until end of input, logs to stderr.  Returns the exit status:
 * 0 at end of input, 1 if it cannot start.
 */
int pv_mcp_main(int argc, char **argv);

#endif /* PV_MCP_H */
