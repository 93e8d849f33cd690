; Edge Station — Windows installer (Inno Setup 6). RECIPE ONLY: not built or tested here
; (the project's machines are Linux). See docs/packaging.md, "Windows".
;
; Build on Windows, from the repository root:
;   py -3.11 -m venv .venv
;   .venv\Scripts\pip install -e . "pyinstaller>=6.10,<7"
;   .venv\Scripts\pyinstaller packaging\edge-station.spec --distpath dist --workpath build\pyinstaller --noconfirm
;   "%ProgramFiles(x86)%\Inno Setup 6\ISCC.exe" /DAppVersion=0.1.0 packaging\windows\edge-station.iss
; Output: dist\edge-station-<version>-setup.exe
;
; The spec builds two executables into one folder on Windows: edge-station.exe (windowed:
; the window, the kiosk, and the camera workers it spawns through itself) and
; edge-station-cli.exe (console: headless, import/export, doctor, verify, migrate).
; To check on a Windows machine before shipping: that workers spawned by the windowed
; executable get their stdout pipe (heartbeats), that the supervisor's polling exit
; detection and TERM->KILL (TerminateProcess) stop them, and that previews work without
; /dev/shm (the preview slot path comes from the supervisor).

#ifndef AppVersion
  #define AppVersion "0.1.0"
#endif
#define AppName "Edge Station"
#define AppExe "edge-station.exe"
#define Root "..\.."

[Setup]
AppId={{6B8E0E51-3C1F-4C57-9A2E-5E1D7C9B0A41}
AppName={#AppName}
AppVersion={#AppVersion}
AppVerName={#AppName} {#AppVersion}
AppPublisher={#AppName}
DefaultDirName={autopf}\{#AppName}
DefaultGroupName={#AppName}
DisableProgramGroupPage=yes
OutputDir={#Root}\dist
OutputBaseFilename=edge-station-{#AppVersion}-setup
SetupIconFile=edge-station.ico
UninstallDisplayIcon={app}\{#AppExe}
UninstallDisplayName={#AppName}
Compression=lzma2/max
SolidCompression=yes
WizardStyle=modern
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
PrivilegesRequired=admin
MinVersion=10.0
; An upgrade closes running copies (Restart Manager) and installs over the old files.
CloseApplications=yes
RestartApplications=no

[Languages]
Name: "en"; MessagesFile: "compiler:Default.isl"
#ifexist "compiler:Languages\ChineseSimplified.isl"
Name: "zh_CN"; MessagesFile: "compiler:Languages\ChineseSimplified.isl"
#endif

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked
Name: "kiosk"; Description: "Start the fullscreen kiosk wall when a user logs on (restarted if it crashes)"; GroupDescription: "Kiosk:"; Flags: unchecked
Name: "path"; Description: "Add edge-station-cli to the PATH"; GroupDescription: "Command line:"; Flags: unchecked

[Files]
Source: "{#Root}\dist\edge-station\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs
Source: "{#Root}\config\cameras.yaml"; DestDir: "{app}\examples"; Flags: ignoreversion
Source: "{#Root}\docs\packaging.md"; DestDir: "{app}\docs"; Flags: ignoreversion
Source: "kiosk-loop.cmd"; DestDir: "{app}"; Flags: ignoreversion

[Icons]
Name: "{group}\{#AppName}"; Filename: "{app}\{#AppExe}"
Name: "{group}\{#AppName} kiosk"; Filename: "{app}\{#AppExe}"; Parameters: "--kiosk"
Name: "{group}\{#AppName} doctor"; Filename: "{cmd}"; Parameters: "/k ""{app}\edge-station-cli.exe"" doctor"
Name: "{group}\Uninstall {#AppName}"; Filename: "{uninstallexe}"
Name: "{autodesktop}\{#AppName}"; Filename: "{app}\{#AppExe}"; Tasks: desktopicon
; Kiosk autostart: the all-users Startup folder runs a loop that restarts the wall when it
; exits with an error and stops when the operator leaves it with the PIN (exit 0).
Name: "{commonstartup}\{#AppName} kiosk"; Filename: "{app}\kiosk-loop.cmd"; WorkingDir: "{app}"; Flags: runminimized; Tasks: kiosk

[Registry]
Root: HKLM; Subkey: "SYSTEM\CurrentControlSet\Control\Session Manager\Environment"; ValueType: expandsz; ValueName: "Path"; ValueData: "{olddata};{app}"; Tasks: path; Check: NeedsAddPath(ExpandConstant('{app}'))

[Run]
Filename: "{app}\{#AppExe}"; Description: "{cm:LaunchProgram,{#AppName}}"; Flags: nowait postinstall skipifsilent

[UninstallDelete]
; Only what the program itself may have written inside its install folder. Station data in
; %LOCALAPPDATA%\edge-station (database, logs) is NEVER removed by the uninstaller.
Type: filesandordirs; Name: "{app}\_internal\app\store\migrations\__pycache__"
Type: filesandordirs; Name: "{app}\_internal\app\store\migrations\versions\__pycache__"

[Code]
function NeedsAddPath(Dir: string): Boolean;
var
  Current: string;
begin
  if not RegQueryStringValue(HKEY_LOCAL_MACHINE,
    'SYSTEM\CurrentControlSet\Control\Session Manager\Environment', 'Path', Current) then
  begin
    Result := True;
    exit;
  end;
  Result := Pos(';' + Uppercase(Dir) + ';', ';' + Uppercase(Current) + ';') = 0;
end;

procedure CurUninstallStepChanged(CurUninstallStep: TUninstallStep);
begin
  if CurUninstallStep = usPostUninstall then
    MsgBox('Edge Station was removed. Station data (database, logs) stays in each user''s ' +
           '%LOCALAPPDATA%\edge-station; delete it by hand if it is no longer wanted.',
           mbInformation, MB_OK);
end;
