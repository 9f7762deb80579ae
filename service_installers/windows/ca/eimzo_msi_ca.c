/*
 * Custom actions of the eimzo-agent MSI (cross-compiled on Debian with mingw-w64; stored in the MSI's Binary
 * table, never installed). wixl builds no WiX extension binaries, so the two things an installer needs from
 * native code are here, and everything else is Python (eimzo_agent/deploy/windows_setup.py):
 *
 *   RunLogged   runs the command line in CustomActionData (the bundled python.exe) without a window, puts its
 *               output into the installer's log, and on a non-zero exit shows/logs that output as the error and
 *               fails the install, so that "ALLOWED_DOMAINS: 'https://x' is not a host name" reaches the admin
 *               (an exe custom action's output would be lost and the admin would see only "error 1722").
 *   StopAgents  ends the agents still running from the install folder in CustomActionData (every user's
 *               session starts one at logon), so that an upgrade or an uninstall can replace or remove the
 *               files instead of leaving them to a reboot.
 */
#define WIN32_LEAN_AND_MEAN
#ifndef UNICODE
#define UNICODE
#endif
#include <windows.h>
#include <msi.h>
#include <msiquery.h>
#include <tlhelp32.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#define EXPORT __declspec(dllexport)

static void
post(MSIHANDLE install, INSTALLMESSAGE kind, const wchar_t *text)
{
    MSIHANDLE record = MsiCreateRecord(1);
    if (!record) return;
    MsiRecordSetStringW(record, 0, L"[1]");  /* the text goes in a field: brackets in it are not formatted */
    MsiRecordSetStringW(record, 1, text);
    MsiProcessMessage(install, kind, record);
    MsiCloseHandle(record);
}

/* CustomActionData (what a deferred action may read) as a new string, or NULL. */
static wchar_t *
action_data(MSIHANDLE install)
{
    DWORD length = 0;
    wchar_t empty[1] = L"";
    if (MsiGetPropertyW(install, L"CustomActionData", empty, &length) != ERROR_MORE_DATA) return NULL;
    wchar_t *value = calloc((size_t)length + 1, sizeof *value);
    if (!value) return NULL;
    length += 1;
    if (MsiGetPropertyW(install, L"CustomActionData", value, &length) != ERROR_SUCCESS || !*value) {
        free(value);
        return NULL;
    }
    return value;
}

static wchar_t *
from_utf8(const char *text, int length)
{
    int wide = MultiByteToWideChar(CP_UTF8, 0, text, length, NULL, 0);
    wchar_t *out = calloc((size_t)wide + 1, sizeof *out);
    if (out) MultiByteToWideChar(CP_UTF8, 0, text, length, out, wide);
    return out;
}

EXPORT UINT __stdcall
RunLogged(MSIHANDLE install)
{
    wchar_t *command = action_data(install);
    if (!command) {
        post(install, INSTALLMESSAGE_ERROR, L"eimzo-agent setup: no command line (CustomActionData is empty)");
        return ERROR_INSTALL_FAILURE;
    }
    SECURITY_ATTRIBUTES inherit = {sizeof inherit, NULL, TRUE};
    HANDLE read_end = NULL, write_end = NULL;
    HANDLE nul = CreateFileW(L"NUL", GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE, &inherit, OPEN_EXISTING, 0,
                             NULL);
    if (!CreatePipe(&read_end, &write_end, &inherit, 0)) {
        free(command);
        post(install, INSTALLMESSAGE_ERROR, L"eimzo-agent setup: cannot create a pipe");
        return ERROR_INSTALL_FAILURE;
    }
    SetHandleInformation(read_end, HANDLE_FLAG_INHERIT, 0);
    STARTUPINFOW startup = {0};
    startup.cb = sizeof startup;
    startup.dwFlags = STARTF_USESTDHANDLES;
    startup.hStdInput = nul;  /* Python refuses to start without valid standard streams */
    startup.hStdOutput = write_end;
    startup.hStdError = write_end;
    PROCESS_INFORMATION process = {0};
    BOOL started = CreateProcessW(NULL, command, NULL, NULL, TRUE, CREATE_NO_WINDOW, NULL, NULL, &startup,
                                  &process);
    CloseHandle(write_end);
    if (nul != INVALID_HANDLE_VALUE) CloseHandle(nul);
    if (!started) {
        wchar_t message[512];
        _snwprintf(message, 511, L"eimzo-agent setup: cannot start %ls (error %lu)", command, GetLastError());
        message[511] = 0;
        free(command);
        CloseHandle(read_end);
        post(install, INSTALLMESSAGE_ERROR, message);
        return ERROR_INSTALL_FAILURE;
    }
    free(command);

    size_t size = 0, capacity = 4096;
    char *output = malloc(capacity);
    for (;;) {
        if (output && capacity - size < 2048) {
            char *bigger = realloc(output, capacity * 2);
            if (!bigger) break;
            output = bigger;
            capacity *= 2;
        }
        char scratch[2048];
        DWORD got = 0;
        char *into = output ? output + size : scratch;
        if (!ReadFile(read_end, into, 2048, &got, NULL) || got == 0) break;
        if (output) size += got;
    }
    CloseHandle(read_end);
    WaitForSingleObject(process.hProcess, INFINITE);
    DWORD status = 1;
    GetExitCodeProcess(process.hProcess, &status);
    CloseHandle(process.hProcess);
    CloseHandle(process.hThread);

    wchar_t *text = output ? from_utf8(output, (int)size) : NULL;
    free(output);
    if (text && *text) post(install, INSTALLMESSAGE_INFO, text);
    if (status != 0) {
        post(install, INSTALLMESSAGE_ERROR, text && *text ? text : L"eimzo-agent setup failed without a message");
    }
    free(text);
    return status == 0 ? ERROR_SUCCESS : ERROR_INSTALL_FAILURE;
}

EXPORT UINT __stdcall
StopAgents(MSIHANDLE install)
{
    wchar_t *folder = action_data(install);
    if (!folder) return ERROR_SUCCESS;
    size_t length = wcslen(folder);
    HANDLE snapshot = CreateToolhelp32Snapshot(TH32CS_SNAPPROCESS, 0);
    PROCESSENTRY32W entry = {0};
    entry.dwSize = sizeof entry;
    if (snapshot != INVALID_HANDLE_VALUE && Process32FirstW(snapshot, &entry)) {
        do {
            if (entry.th32ProcessID == GetCurrentProcessId()) continue;
            HANDLE process = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION | PROCESS_TERMINATE | SYNCHRONIZE, FALSE,
                                         entry.th32ProcessID);
            if (!process) continue;
            wchar_t image[MAX_PATH * 2];
            DWORD size = MAX_PATH * 2;
            if (QueryFullProcessImageNameW(process, 0, image, &size) && size > length
                && _wcsnicmp(image, folder, length) == 0) {
                wchar_t message[MAX_PATH * 2 + 64];
                _snwprintf(message, MAX_PATH * 2 + 63, L"eimzo-agent setup: ending %ls (process %lu)", image,
                           entry.th32ProcessID);
                message[MAX_PATH * 2 + 63] = 0;
                post(install, INSTALLMESSAGE_INFO, message);
                if (TerminateProcess(process, 0)) WaitForSingleObject(process, 10000);
            }
            CloseHandle(process);
        } while (Process32NextW(snapshot, &entry));
    }
    if (snapshot != INVALID_HANDLE_VALUE) CloseHandle(snapshot);
    free(folder);
    return ERROR_SUCCESS;
}
