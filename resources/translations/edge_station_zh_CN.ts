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
        <name>AlertsPage</name>
        <message>
            <source>Alerts: –</source>
            <translation>告警：–</translation>
        </message>
        <message>
            <source>Acknowledge</source>
            <translation>确认</translation>
        </message>
        <message>
            <source>Acknowledge the selected alerts (Ctrl+K)</source>
            <translation>确认所选告警 (Ctrl+K)</translation>
        </message>
        <message>
            <source>Acknowledge all</source>
            <translation>全部确认</translation>
        </message>
        <message>
            <source>Alerts are not available in this station</source>
            <translation>此工作站不提供告警</translation>
        </message>
    </context>
    <context>
        <name>CameraDialog</name>
        <message>
            <source>A running camera keeps its old settings until it is restarted.</source>
            <translation>正在运行的摄像头在重启之前沿用旧设置。</translation>
        </message>
    </context>
    <context>
        <name>CameraForm</name>
        <message>
            <source>e.g. Lobby</source>
            <translation>例如：大堂</translation>
        </message>
        <message>
            <source>test://moving, rtsp://user:pass@host/stream, /path/clip.mp4, /dev/video0</source>
            <translation>test://moving、rtsp://user:pass@host/stream、/path/clip.mp4、/dev/video0</translation>
        </message>
        <message>
            <source>show password</source>
            <translation>显示密码</translation>
        </message>
        <message>
            <source>active (starts with the station)</source>
            <translation>启用（随工作站启动）</translation>
        </message>
        <message>
            <source>loop a file source</source>
            <translation>循环播放文件源</translation>
        </message>
        <message>
            <source>source rate</source>
            <translation>源帧率</translation>
        </message>
        <message>
            <source>detect motion</source>
            <translation>检测移动</translation>
        </message>
        <message>
            <source>comma separated, e.g. indoor, demo</source>
            <translation>以逗号分隔，例如：indoor, demo</translation>
        </message>
        <message>
            <source>&amp;Name</source>
            <translation>名称(&amp;N)</translation>
        </message>
        <message>
            <source>&amp;Source</source>
            <translation>视频源(&amp;S)</translation>
        </message>
        <message>
            <source>Max &amp;FPS</source>
            <translation>最大帧率(&amp;F)</translation>
        </message>
        <message>
            <source>S&amp;tall timeout</source>
            <translation>卡顿超时(&amp;T)</translation>
        </message>
        <message>
            <source>Motion &amp;threshold</source>
            <translation>移动阈值(&amp;T)</translation>
        </message>
        <message>
            <source>Motion &amp;warm-up frames</source>
            <translation>移动检测预热帧数(&amp;W)</translation>
        </message>
        <message>
            <source>&amp;Location</source>
            <translation>位置(&amp;L)</translation>
        </message>
        <message>
            <source>T&amp;ags</source>
            <translation>标签(&amp;A)</translation>
        </message>
    </context>
    <context>
        <name>CameraTableModel</name>
        <message>
            <source>Name</source>
            <translation>名称</translation>
        </message>
        <message>
            <source>State</source>
            <translation>状态</translation>
        </message>
        <message>
            <source>FPS</source>
            <translation>帧率</translation>
        </message>
        <message>
            <source>Motion</source>
            <translation>移动</translation>
        </message>
        <message>
            <source>Uptime</source>
            <translation>运行时长</translation>
        </message>
        <message>
            <source>Restarts</source>
            <translation>重启次数</translation>
        </message>
        <message>
            <source>Source</source>
            <translation>视频源</translation>
        </message>
    </context>
    <context>
        <name>CameraTile</name>
        <message>
            <source>waiting for the first frame…</source>
            <extracomment>how many frames this tile turned into images (tests and the benchmark read it)</extracomment>
            <translation>正在等待第一帧…</translation>
        </message>
        <message>
            <source>SOURCE DOWN since {0}</source>
            <translation>视频源自 {0} 起中断</translation>
        </message>
        <message>
            <source>OFFLINE since {0}</source>
            <translation>自 {0} 起离线</translation>
        </message>
    </context>
    <context>
        <name>CameraWall</name>
        <message>
            <source>Wall layout</source>
            <translation>监控墙布局</translation>
        </message>
        <message>
            <source>Layout:</source>
            <translation>布局：</translation>
        </message>
        <message>
            <source>No cameras. Add one from the Cameras page or import a cameras.yaml.</source>
            <translation>没有摄像头。请在“摄像头”页面添加，或导入 cameras.yaml。</translation>
        </message>
        <message>
            <source>page {0}/{1}</source>
            <translation>第 {0}/{1} 页</translation>
        </message>
    </context>
    <context>
        <name>ChartsPage</name>
        <message>
            <source>Show the last</source>
            <translation>显示最近</translation>
        </message>
        <message>
            <source>metrics are not available in this station</source>
            <translation>此工作站不提供指标</translation>
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
        <name>LogsDialog</name>
        <message>
            <source>filter (text or level)</source>
            <translation>筛选（文本或级别）</translation>
        </message>
        <message>
            <source>follow (2 s)</source>
            <translation>跟踪（2 秒）</translation>
        </message>
        <message>
            <source>Refresh</source>
            <translation>刷新</translation>
        </message>
    </context>
    <context>
        <name>MainWindow</name>
        <message>
            <source>Edge Station</source>
            <translation>Edge Station</translation>
        </message>
        <message>
            <source>Cameras</source>
            <translation>摄像头</translation>
        </message>
        <message>
            <source>Wall</source>
            <translation>监控墙</translation>
        </message>
        <message>
            <source>Opening the station…</source>
            <translation>正在打开工作站…</translation>
        </message>
        <message>
            <source>Show window</source>
            <translation>显示窗口</translation>
        </message>
        <message>
            <source>Charts</source>
            <translation>图表</translation>
        </message>
        <message>
            <source>Alerts</source>
            <translation>告警</translation>
        </message>
        <message>
            <source>Rules</source>
            <translation>规则</translation>
        </message>
        <message>
            <source>Rollout</source>
            <translation>灰度发布</translation>
        </message>
        <message>
            <source>&amp;Start</source>
            <translation>启动(&amp;S)</translation>
        </message>
        <message>
            <source>Start the selected cameras</source>
            <translation>启动所选摄像头</translation>
        </message>
        <message>
            <source>S&amp;top</source>
            <translation>停止(&amp;T)</translation>
        </message>
        <message>
            <source>Stop the selected cameras</source>
            <translation>停止所选摄像头</translation>
        </message>
        <message>
            <source>&amp;Restart</source>
            <translation>重启(&amp;R)</translation>
        </message>
        <message>
            <source>Restart the selected cameras</source>
            <translation>重启所选摄像头</translation>
        </message>
        <message>
            <source>Start &amp;all</source>
            <translation>全部启动(&amp;A)</translation>
        </message>
        <message>
            <source>Start every active camera</source>
            <translation>启动所有已启用的摄像头</translation>
        </message>
        <message>
            <source>Stop a&amp;ll</source>
            <translation>全部停止(&amp;L)</translation>
        </message>
        <message>
            <source>Stop every camera</source>
            <translation>停止所有摄像头</translation>
        </message>
        <message>
            <source>&amp;Activate</source>
            <translation>启用(&amp;A)</translation>
        </message>
        <message>
            <source>Mark the selected cameras active (they autostart)</source>
            <translation>将所选摄像头标记为启用（自动启动）</translation>
        </message>
        <message>
            <source>&amp;Deactivate</source>
            <translation>停用(&amp;D)</translation>
        </message>
        <message>
            <source>Stop the selected cameras and mark them inactive</source>
            <translation>停止所选摄像头并标记为停用</translation>
        </message>
        <message>
            <source>&amp;Add camera…</source>
            <translation>添加摄像头(&amp;A)…</translation>
        </message>
        <message>
            <source>&amp;Edit camera…</source>
            <translation>编辑摄像头(&amp;E)…</translation>
        </message>
        <message>
            <source>Re&amp;move camera…</source>
            <translation>删除摄像头(&amp;M)…</translation>
        </message>
        <message>
            <source>&amp;Logs…</source>
            <translation>日志(&amp;L)…</translation>
        </message>
        <message>
            <source>Sna&amp;pshot…</source>
            <translation>快照(&amp;P)…</translation>
        </message>
        <message>
            <source>Pro&amp;be source…</source>
            <translation>探测视频源(&amp;B)…</translation>
        </message>
        <message>
            <source>Process s&amp;tats…</source>
            <translation>进程统计(&amp;T)…</translation>
        </message>
        <message>
            <source>&amp;Import cameras…</source>
            <translation>导入摄像头(&amp;I)…</translation>
        </message>
        <message>
            <source>E&amp;xport cameras…</source>
            <translation>导出摄像头(&amp;X)…</translation>
        </message>
        <message>
            <source>&amp;Quit</source>
            <translation>退出(&amp;Q)</translation>
        </message>
        <message>
            <source>S&amp;ettings…</source>
            <translation>设置(&amp;E)…</translation>
        </message>
        <message>
            <source>Wall full screen</source>
            <translation>监控墙全屏</translation>
        </message>
        <message>
            <source>Camera actions</source>
            <translation>摄像头操作</translation>
        </message>
        <message>
            <source>&amp;Station</source>
            <translation>工作站(&amp;S)</translation>
        </message>
        <message>
            <source>&amp;Camera</source>
            <translation>摄像头(&amp;C)</translation>
        </message>
        <message>
            <source>&amp;View</source>
            <translation>视图(&amp;V)</translation>
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
        <name>RolloutPage</name>
        <message>
            <source>Rollout: –</source>
            <translation>灰度发布：–</translation>
        </message>
        <message>
            <source>Advance to next stage</source>
            <translation>推进到下一阶段</translation>
        </message>
        <message>
            <source>Roll back now</source>
            <translation>立即回滚</translation>
        </message>
        <message>
            <source>Run verification</source>
            <translation>运行验证</translation>
        </message>
        <message>
            <source>Health: –</source>
            <translation>健康状况：–</translation>
        </message>
        <message>
            <source>Stage gate: –</source>
            <translation>阶段门禁：–</translation>
        </message>
        <message>
            <source>Rollback checklist (verified)</source>
            <translation>回滚检查清单（已验证）</translation>
        </message>
        <message>
            <source>Calls in the health window</source>
            <translation>健康窗口内的调用</translation>
        </message>
        <message>
            <source>Rollout: not available in this station</source>
            <translation>灰度发布：此工作站不可用</translation>
        </message>
        <message>
            <source>Rollout: ROLLED BACK — every call on legacy</source>
            <translation>灰度发布：已回滚 — 所有调用走旧版实现</translation>
        </message>
        <message>
            <source>Rollout: legacy (domain path off)</source>
            <translation>灰度发布：旧版实现（领域路径已关闭）</translation>
        </message>
        <message>
            <source>Last verification: never (the gate needs one)</source>
            <translation>上次验证：从未（门禁需要一次验证）</translation>
        </message>
    </context>
    <context>
        <name>RuleForm</name>
        <message>
            <source>always, or e.g. mon-fri 08:00-18:00; sat 10:00-14:00</source>
            <translation>始终，或例如 mon-fri 08:00-18:00; sat 10:00-14:00</translation>
        </message>
        <message>
            <source>enabled</source>
            <translation>已启用</translation>
        </message>
        <message>
            <source>desktop notification</source>
            <translation>桌面通知</translation>
        </message>
        <message>
            <source>sound</source>
            <translation>声音</translation>
        </message>
        <message>
            <source>https://… (optional)</source>
            <translation>https://…（可选）</translation>
        </message>
        <message>
            <source>program and arguments, run without a shell (optional)</source>
            <translation>程序及参数，不经 shell 运行（可选）</translation>
        </message>
        <message>
            <source>&amp;Name</source>
            <translation>名称(&amp;N)</translation>
        </message>
        <message>
            <source>&amp;Target</source>
            <translation>目标(&amp;T)</translation>
        </message>
        <message>
            <source>&amp;Camera</source>
            <translation>摄像头(&amp;C)</translation>
        </message>
        <message>
            <source>&amp;Metric</source>
            <translation>指标(&amp;M)</translation>
        </message>
        <message>
            <source>Condition</source>
            <translation>条件</translation>
        </message>
        <message>
            <source>For</source>
            <translation>持续</translation>
        </message>
        <message>
            <source>Keep firing for</source>
            <translation>保持触发</translation>
        </message>
        <message>
            <source>Cooldown</source>
            <translation>冷却时间</translation>
        </message>
        <message>
            <source>Repeat every</source>
            <translation>重复间隔</translation>
        </message>
        <message>
            <source>Severity</source>
            <translation>严重程度</translation>
        </message>
        <message>
            <source>No data</source>
            <translation>无数据</translation>
        </message>
        <message>
            <source>Schedule</source>
            <translation>时间表</translation>
        </message>
        <message>
            <source>Webhook</source>
            <translation>Webhook</translation>
        </message>
        <message>
            <source>Command</source>
            <translation>命令</translation>
        </message>
        <message>
            <source>Description</source>
            <translation>描述</translation>
        </message>
    </context>
    <context>
        <name>RulesPage</name>
        <message>
            <source>New…</source>
            <translation>新建…</translation>
        </message>
        <message>
            <source>Edit…</source>
            <translation>编辑…</translation>
        </message>
        <message>
            <source>Disable</source>
            <translation>禁用</translation>
        </message>
        <message>
            <source>Delete</source>
            <translation>删除</translation>
        </message>
        <message>
            <source>Template:</source>
            <translation>模板：</translation>
        </message>
    </context>
    <context>
        <name>SettingsDialog</name>
        <message>
            <source>Settings</source>
            <translation>设置</translation>
        </message>
        <message>
            <source>serve calls with the domain implementation</source>
            <translation>使用领域实现处理调用</translation>
        </message>
        <message>
            <source>roll back automatically when the domain path is unhealthy</source>
            <translation>领域路径不健康时自动回滚</translation>
        </message>
        <message>
            <source>Domain path</source>
            <translation>领域路径</translation>
        </message>
        <message>
            <source>Rollout percentage</source>
            <translation>灰度发布百分比</translation>
        </message>
        <message>
            <source>Shadow compare rate</source>
            <translation>影子比对比例</translation>
        </message>
        <message>
            <source>This station has no rollout router.</source>
            <translation>此工作站没有灰度发布路由器。</translation>
        </message>
        <message>
            <source>Rollout</source>
            <translation>灰度发布</translation>
        </message>
        <message>
            <source>serve the control API and Prometheus metrics</source>
            <translation>提供控制 API 和 Prometheus 指标</translation>
        </message>
        <message>
            <source>Data directory</source>
            <translation>数据目录</translation>
        </message>
        <message>
            <source>Database</source>
            <translation>数据库</translation>
        </message>
        <message>
            <source>API</source>
            <translation>API</translation>
        </message>
        <message>
            <source>API / metrics host</source>
            <translation>API / 指标主机</translation>
        </message>
        <message>
            <source>API / metrics port</source>
            <translation>API / 指标端口</translation>
        </message>
        <message>
            <source>General</source>
            <translation>常规</translation>
        </message>
        <message>
            <source>leave empty to keep the current PIN</source>
            <translation>留空则保留当前 PIN</translation>
        </message>
        <message>
            <source>Remove PIN</source>
            <translation>删除 PIN</translation>
        </message>
        <message>
            <source>off</source>
            <translation>关闭</translation>
        </message>
        <message>
            <source>Operator PIN</source>
            <translation>操作员 PIN</translation>
        </message>
        <message>
            <source>Repeat PIN</source>
            <translation>再次输入 PIN</translation>
        </message>
        <message>
            <source>Wall layout</source>
            <translation>监控墙布局</translation>
        </message>
        <message>
            <source>Cycle pages every</source>
            <translation>翻页间隔</translation>
        </message>
        <message>
            <source>Kiosk</source>
            <translation>展台模式</translation>
        </message>
        <message>
            <source>source rate</source>
            <translation>源帧率</translation>
        </message>
        <message>
            <source>Max FPS</source>
            <translation>最大帧率</translation>
        </message>
        <message>
            <source>Stall timeout</source>
            <translation>卡顿超时</translation>
        </message>
        <message>
            <source>Motion threshold</source>
            <translation>移动阈值</translation>
        </message>
        <message>
            <source>Used for cameras added from the window.</source>
            <translation>用于从窗口添加的摄像头。</translation>
        </message>
        <message>
            <source>Camera defaults</source>
            <translation>摄像头默认值</translation>
        </message>
    </context>
    <context>
        <name>SnapshotDialog</name>
        <message>
            <source>taking a snapshot…</source>
            <translation>正在拍摄快照…</translation>
        </message>
        <message>
            <source>Save…</source>
            <translation>保存…</translation>
        </message>
        <message>
            <source>Take again</source>
            <translation>重新拍摄</translation>
        </message>
        <message>
            <source>Close</source>
            <translation>关闭</translation>
        </message>
    </context>
    <context>
        <name>StatsDialog</name>
        <message>
            <source>…</source>
            <translation>…</translation>
        </message>
        <message>
            <source>Refresh</source>
            <translation>刷新</translation>
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
