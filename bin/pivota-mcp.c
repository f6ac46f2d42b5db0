/* bin/pivota-mcp.c: the MCP server for agents.  Logic: lib/pv_mcp.c. */
#include "pv_mcp.h"

int
main(int argc, char **argv)
{
	return pv_mcp_main(argc, argv);
}
