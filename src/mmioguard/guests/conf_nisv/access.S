/* The load/store forms shared with conf_isv0: see sdk/access_forms.h. */
#include "access_forms.h"
