/*
 * The report's filter, applied while the report is built (report.c):
 * report.h's struct pfs_report_filter on a report's processes and sites.
 */
#ifndef PFSHIM_REPORT_FILTER_H
#define PFSHIM_REPORT_FILTER_H

#include "report.h"

/*
 * The processes and sites the filter keeps, in place: under a time window
 * their faults counted again and ranked again; evidence and storms kept in
 * step.  0 or -ENOMEM.
 */
int pfs_report_apply_filter(struct pfs_report *rep, const struct pfs_report_filter *f);

#endif
