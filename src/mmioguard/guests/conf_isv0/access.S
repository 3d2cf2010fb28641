/* The load/store forms shared with conf_nisv: see sdk/access_forms.h. */
#include "access_forms.h"
