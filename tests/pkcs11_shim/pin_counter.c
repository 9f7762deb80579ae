/* A PKCS#11 test module that counts wrong user PINs the way hardware tokens do.
 *
 * SoftHSM never locks a PIN, so the agent's "last try" and "PIN locked" paths could not be tested with it alone.
 * This module loads the real module ($PIN_SHIM_MODULE, default SoftHSM2), forwards every call to it, and changes
 * only two: C_Login (as the user) counts wrong PINs per token, and C_GetTokenInfo reports that count in the
 * flags a real token uses:
 *   1 or more wrong PINs          CKF_USER_PIN_COUNT_LOW
 *   one try left (max - 1 wrong)  CKF_USER_PIN_FINAL_TRY (and COUNT_LOW)
 *   max wrong PINs                CKF_USER_PIN_LOCKED; C_Login answers CKR_PIN_LOCKED without trying the PIN
 * A right PIN resets the count, as real tokens do. The count lives in $PIN_SHIM_STATE_DIR/<token serial>.failures,
 * so every process using the module (the agent, pkcs11-tool in a test) sees and spends the same tries, like
 * several programs sharing one USB token. $PIN_SHIM_MAX_TRIES sets max (default 3). $PIN_SHIM_REPORT_FLAGS=0
 * keeps counting and locking but reports none of the three flags (tokens that do not tell their state).
 *
 * Test code only: no locking between threads (the agent serialises calls per module) and no care for speed.
 */

#include <ctype.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <p11-kit/pkcs11.h>

#define USER_PIN_FLAGS (CKF_USER_PIN_COUNT_LOW | CKF_USER_PIN_FINAL_TRY | CKF_USER_PIN_LOCKED)

static CK_FUNCTION_LIST shim;
static CK_FUNCTION_LIST_PTR real;

static int max_tries(void)
{
    const char *value = getenv("PIN_SHIM_MAX_TRIES");
    int max = value ? atoi(value) : 3;
    return max > 0 ? max : 3;
}

static int report_flags(void)
{
    const char *value = getenv("PIN_SHIM_REPORT_FLAGS");
    return !value || strcmp(value, "0") != 0;
}

/* The counter file of the token described by `info`; 0 when the token has no usable serial number. */
static int counter_path(const CK_TOKEN_INFO *info, char *path, size_t size)
{
    char serial[sizeof info->serialNumber + 1];
    size_t length = 0;
    for (size_t i = 0; i < sizeof info->serialNumber; i++) {
        unsigned char c = info->serialNumber[i];
        if (isalnum(c))
            serial[length++] = (char) c;
    }
    serial[length] = '\0';
    if (length == 0)
        return 0;
    int written = snprintf(path, size, "%s/%s.failures", getenv("PIN_SHIM_STATE_DIR"), serial);
    return written > 0 && (size_t) written < size;
}

static int read_failures(const char *path)
{
    FILE *file = fopen(path, "r");
    int failures = 0;
    if (file) {
        if (fscanf(file, "%d", &failures) != 1 || failures < 0)
            failures = 0;
        fclose(file);
    }
    return failures;
}

static void write_failures(const char *path, int failures)
{
    FILE *file = fopen(path, "w");
    if (!file) {
        perror(path);
        return;
    }
    fprintf(file, "%d\n", failures);
    fclose(file);
}

static CK_RV shim_GetTokenInfo(CK_SLOT_ID slot, CK_TOKEN_INFO_PTR info)
{
    char path[4096];
    CK_RV rv = real->C_GetTokenInfo(slot, info);
    if (rv != CKR_OK || !counter_path(info, path, sizeof path))
        return rv;
    int failures = read_failures(path), max = max_tries();
    info->flags &= ~(CK_FLAGS) USER_PIN_FLAGS; /* SoftHSM's own COUNT_LOW would blur what the test sets up */
    if (!report_flags())
        return rv;
    if (failures >= max)
        info->flags |= CKF_USER_PIN_LOCKED;
    else if (failures > 0)
        info->flags |= CKF_USER_PIN_COUNT_LOW | (failures == max - 1 ? CKF_USER_PIN_FINAL_TRY : 0);
    else if (max == 1)
        info->flags |= CKF_USER_PIN_FINAL_TRY;
    return rv;
}

static CK_RV shim_Login(CK_SESSION_HANDLE session, CK_USER_TYPE user, CK_UTF8CHAR_PTR pin, CK_ULONG pin_length)
{
    CK_SESSION_INFO session_info;
    CK_TOKEN_INFO token_info;
    char path[4096];
    if (user != CKU_USER || real->C_GetSessionInfo(session, &session_info) != CKR_OK
        || real->C_GetTokenInfo(session_info.slotID, &token_info) != CKR_OK
        || !counter_path(&token_info, path, sizeof path))
        return real->C_Login(session, user, pin, pin_length);
    int failures = read_failures(path);
    if (failures >= max_tries())
        return CKR_PIN_LOCKED;
    CK_RV rv = real->C_Login(session, user, pin, pin_length);
    if (rv == CKR_PIN_INCORRECT)
        write_failures(path, failures + 1);
    else if ((rv == CKR_OK || rv == CKR_USER_ALREADY_LOGGED_IN) && failures != 0)
        write_failures(path, 0);
    return rv;
}

CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR list)
{
    if (!list)
        return CKR_ARGUMENTS_BAD;
    if (!real) {
        const char *module = getenv("PIN_SHIM_MODULE");
        if (!module)
            module = "/usr/lib/softhsm/libsofthsm2.so";
        if (!getenv("PIN_SHIM_STATE_DIR")) {
            fprintf(stderr, "pin_counter: set PIN_SHIM_STATE_DIR to the folder for the PIN counters\n");
            return CKR_GENERAL_ERROR;
        }
        void *handle = dlopen(module, RTLD_NOW | RTLD_LOCAL);
        if (!handle) {
            fprintf(stderr, "pin_counter: %s\n", dlerror());
            return CKR_GENERAL_ERROR;
        }
        CK_C_GetFunctionList get_list = (CK_C_GetFunctionList) dlsym(handle, "C_GetFunctionList");
        CK_FUNCTION_LIST_PTR found = NULL;
        if (!get_list || get_list(&found) != CKR_OK || !found) {
            fprintf(stderr, "pin_counter: %s has no usable C_GetFunctionList\n", module);
            dlclose(handle);
            return CKR_GENERAL_ERROR;
        }
        real = found;
        shim = *real;
        shim.C_GetTokenInfo = shim_GetTokenInfo;
        shim.C_Login = shim_Login;
    }
    *list = &shim;
    return CKR_OK;
}
