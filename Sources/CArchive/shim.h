// libarchive, used by Images to read OCI layer tarballs (plain, gzip or zstd: the filter is
// detected from the data) and to write their entries to disk with its secure-extraction checks.
#include <archive.h>
#include <archive_entry.h>
