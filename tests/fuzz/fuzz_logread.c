/*
 * libFuzzer harness for the analyzer's log reader: the input is one log
 * file, read by pfs_logread (through the model's handlers), then the model
 * is finished and every process's storms computed.  Symbolization is left
 * out: it would open whatever paths the input names.  Any crash, sanitizer
 * report or leak is a bug; bad records must only be counted.
 */
#include <stddef.h>
#include <stdint.h>

#include "../../analyzer/model.h"
#include "../../analyzer/storms.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pfs_run run;

	pfs_model_init(&run, NULL);
	if (pfs_model_load_buffer(&run, data, size, "fuzz.pfslog") == 0 &&
	    pfs_model_finish(&run) == 0) {
		for (size_t i = 0; i < run.nprocs; i++) {
			struct pfs_series s;

			if (pfs_storms_compute(run.procs[i], NULL, &s) == 0)
				pfs_storms_free(&s);
		}
	}
	pfs_model_free(&run);
	return 0;
}
