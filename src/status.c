/* Status names and the library version. */
#include "dafl.h"

const char *dafl_status_string(dafl_status status)
{
    switch (status) {
    case DAFL_OK: return "DAFL_OK: success";
    case DAFL_ERR_NULL_POINTER: return "DAFL_ERR_NULL_POINTER: a required pointer is NULL";
    case DAFL_ERR_SIZE_OVERFLOW: return "DAFL_ERR_SIZE_OVERFLOW: the sizes overflow size_t";
    case DAFL_ERR_INVALID_PARAMETER:
        return "DAFL_ERR_INVALID_PARAMETER: a parameter is out of its range or NaN";
    case DAFL_ERR_INVALID_TARGET:
        return "DAFL_ERR_INVALID_TARGET: a target is outside [0, 1] or NaN";
    case DAFL_ERR_INVALID_LABEL:
        return "DAFL_ERR_INVALID_LABEL: a label is outside 0..c-1 and not ignore_index";
    case DAFL_ERR_INVALID_ENUM:
        return "DAFL_ERR_INVALID_ENUM: unknown (or, for this loss, invalid) enum or flag";
    case DAFL_ERR_STRUCT_SIZE:
        return "DAFL_ERR_STRUCT_SIZE: params->struct_size is not a size this library reads";
    case DAFL_ERR_ISA_UNAVAILABLE:
        return "DAFL_ERR_ISA_UNAVAILABLE: this CPU or build lacks the instruction set";
    case DAFL_ERR_OUT_OF_MEMORY: return "DAFL_ERR_OUT_OF_MEMORY: a temporary allocation failed";
    case DAFL_ERR_OVERLAP:
        return "DAFL_ERR_OVERLAP: an output overlaps an input or the other output "
               "(only grad == input is allowed)";
    case DAFL_ERR_PARALLEL_FOR:
        return "DAFL_ERR_PARALLEL_FOR: the host's parallel-for broke its contract (the "
               "outputs are complete: dafl ran what it skipped and dropped repeats)";
    }
    return "DAFL_ERR_UNKNOWN: not a dafl status code";
}

const char *dafl_version(void) { return DAFL_VERSION_STRING; }

int dafl_version_number(void) { return DAFL_VERSION_NUMBER; }
