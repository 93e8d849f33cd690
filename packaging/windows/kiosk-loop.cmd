@echo off
rem Edge Station kiosk for the Startup folder (RECIPE ONLY, not tested here).
rem Restarts the wall when it exits with an error or is killed; an exit with status 0 is
rem the operator leaving the kiosk with the PIN, and ends the loop. Mirrors the Linux
rem systemd user unit edge-station-kiosk.service (Restart=on-failure, RestartSec=3).
:loop
"%~dp0edge-station.exe" --kiosk
if %ERRORLEVEL% EQU 0 exit /b 0
timeout /t 3 /nobreak >nul
goto loop
