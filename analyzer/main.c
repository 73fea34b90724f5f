/* pfshim: the analyzer CLI; everything is in cli.c. */
#include "cli.h"

int main(int argc, char **argv)
{
	return pfs_cli_main(argc, argv);
}
