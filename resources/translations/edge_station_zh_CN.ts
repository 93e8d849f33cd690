<?xml version="1.0" encoding="utf-8"?>
<!DOCTYPE TS>
<TS version="2.1" language="zh_CN" sourcelanguage="en">
    <context>
        <name>AlertTicker</name>
        <message>
            <source>No active alerts</source>
            <extracomment>PIN prompts are read from a few steps away and typed on touch screens: larger than desktop dialogs</extracomment>
            <translation>无活动告警</translation>
        </message>
    </context>
    <context>
        <name>KioskWindow</name>
        <message>
            <source>Edge Station — kiosk</source>
            <translation>Edge Station — 展台模式</translation>
        </message>
        <message>
            <source>Settings (operator PIN)</source>
            <translation>设置（需要操作员 PIN）</translation>
        </message>
        <message>
            <source>The station could not open: {error}</source>
            <translation>工作站无法打开：{error}</translation>
        </message>
        <message>
            <source>No operator PIN set: kiosk exit is not protected</source>
            <translation>未设置操作员 PIN：退出展台模式不受保护</translation>
        </message>
        <message>
            <source>alert</source>
            <translation>告警</translation>
        </message>
        <message>
            <source>CRITICAL</source>
            <translation>严重</translation>
        </message>
        <message>
            <source>WARNING</source>
            <translation>警告</translation>
        </message>
        <message>
            <source>INFO</source>
            <translation>信息</translation>
        </message>
    </context>
    <context>
        <name>PinDialog</name>
        <message>
            <source>Operator PIN</source>
            <translation>操作员 PIN</translation>
        </message>
        <message>
            <source>{low} to {high} digits</source>
            <translation>{low} 至 {high} 位数字</translation>
        </message>
        <message>
            <source>Unlock</source>
            <translation>解锁</translation>
        </message>
        <message>
            <source>Cancel</source>
            <translation>取消</translation>
        </message>
        <message>
            <source>Enter the operator PIN to open the settings.</source>
            <translation>请输入操作员 PIN 以打开设置。</translation>
        </message>
        <message>
            <source>Enter the operator PIN to leave kiosk mode.</source>
            <translation>请输入操作员 PIN 以退出展台模式。</translation>
        </message>
        <message>
            <source>Type the PIN first.</source>
            <translation>请先输入 PIN。</translation>
        </message>
        <message>
            <source>Checking…</source>
            <translation>正在验证…</translation>
        </message>
        <message>
            <source>Wrong PIN.</source>
            <translation>PIN 错误。</translation>
        </message>
        <message>
            <source>The PIN could not be checked: {error}</source>
            <translation>无法验证 PIN：{error}</translation>
        </message>
        <message>
            <source>Too many wrong PINs. Try again in {seconds} s.</source>
            <translation>PIN 错误次数过多。请在 {seconds} 秒后重试。</translation>
        </message>
    </context>
    <context>
        <name>UnprotectedDialog</name>
        <message>
            <source>No operator PIN</source>
            <translation>未设置操作员 PIN</translation>
        </message>
        <message>
            <source>No operator PIN is set, so anyone at this screen can leave kiosk mode or change the settings.
Set a PIN on this machine with:
edge-station pin set --data-dir {path}</source>
            <translation>尚未设置操作员 PIN，因此任何人都可以在此屏幕上退出展台模式或更改设置。
请在本机上用以下命令设置 PIN：
edge-station pin set --data-dir {path}</translation>
        </message>
        <message>
            <source>Open the settings</source>
            <translation>打开设置</translation>
        </message>
        <message>
            <source>Leave kiosk mode</source>
            <translation>退出展台模式</translation>
        </message>
        <message>
            <source>Cancel</source>
            <translation>取消</translation>
        </message>
    </context>
</TS>
