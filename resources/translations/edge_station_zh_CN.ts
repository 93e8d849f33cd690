<?xml version="1.0" encoding="utf-8"?>
<!DOCTYPE TS>
<TS version="2.1" language="zh_CN" sourcelanguage="en">
    <context>
        <name>AlertText</name>
        <message>
            <source>critical</source>
            <extracomment>severities and alert states as the window shows them (the stored values stay English)</extracomment>
            <translation>严重</translation>
        </message>
        <message>
            <source>warning</source>
            <translation>警告</translation>
        </message>
        <message>
            <source>info</source>
            <translation>信息</translation>
        </message>
        <message>
            <source>firing</source>
            <translation>告警中</translation>
        </message>
        <message>
            <source>pending</source>
            <translation>待定</translation>
        </message>
        <message>
            <source>resolved</source>
            <translation>已解除</translation>
        </message>
        <message>
            <source>inactive</source>
            <translation>停用</translation>
        </message>
        <message>
            <source> (held)</source>
            <translation>（暂缓）</translation>
        </message>
        <message>
            <source>yes</source>
            <translation>是</translation>
        </message>
    </context>
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
            <source>Filter by rule, subject, severity or state</source>
            <translation>按规则、对象、严重程度或状态筛选</translation>
        </message>
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
            <source>Severity</source>
            <translation>严重程度</translation>
        </message>
        <message>
            <source>Rule</source>
            <translation>规则</translation>
        </message>
        <message>
            <source>Subject</source>
            <translation>对象</translation>
        </message>
        <message>
            <source>State</source>
            <translation>状态</translation>
        </message>
        <message>
            <source>Value</source>
            <translation>数值</translation>
        </message>
        <message>
            <source>Threshold</source>
            <translation>阈值</translation>
        </message>
        <message>
            <source>Since</source>
            <translation>开始时间</translation>
        </message>
        <message>
            <source>Acknowledged</source>
            <translation>已确认</translation>
        </message>
        <message>
            <source>Fired</source>
            <translation>触发时间</translation>
        </message>
        <message>
            <source>Resolved</source>
            <translation>恢复时间</translation>
        </message>
        <message>
            <source>Acknowledged by</source>
            <translation>确认人</translation>
        </message>
        <message>
            <source>Message</source>
            <translation>消息</translation>
        </message>
        <message>
            <source>Active</source>
            <translation>活动</translation>
        </message>
        <message>
            <source>History</source>
            <translation>历史</translation>
        </message>
        <message>
            <source>&lt;b&gt;{title}&lt;/b&gt;</source>
            <translation>&lt;b&gt;{title}&lt;/b&gt;</translation>
        </message>
        <message>
            <source>Alerts are not available in this station</source>
            <translation>此工作站不提供告警</translation>
        </message>
        <message>
            <source>could not read the alerts: {0}</source>
            <translation>无法读取告警：{0}</translation>
        </message>
        <message>
            <source>{0} firing ({1} not acknowledged), {2} pending</source>
            <translation>{0} 条触发中（{1} 条未确认），{2} 条待定</translation>
        </message>
        <message>
            <source>No active alerts</source>
            <translation>无活动告警</translation>
        </message>
        <message>
            <source>acknowledge failed: {0}</source>
            <translation>确认失败：{0}</translation>
        </message>
        <message>
            <source>Snapshot</source>
            <translation>快照</translation>
        </message>
    </context>
    <context>
        <name>CameraActions</name>
        <message>
            <source>{label}: done</source>
            <translation>{label}：完成</translation>
        </message>
        <message>
            <source>camera {id}</source>
            <translation>摄像头 {id}</translation>
        </message>
        <message>
            <source>Start {0}</source>
            <translation>启动 {0}</translation>
        </message>
        <message>
            <source>Stop {0}</source>
            <translation>停止 {0}</translation>
        </message>
        <message>
            <source>Restart {0}</source>
            <translation>重启 {0}</translation>
        </message>
        <message>
            <source>Activate {0}</source>
            <translation>启用 {0}</translation>
        </message>
        <message>
            <source>Deactivate {0}</source>
            <translation>停用 {0}</translation>
        </message>
        <message>
            <source>Start all</source>
            <translation>全部启动</translation>
        </message>
        <message>
            <source>Stop all</source>
            <translation>全部停止</translation>
        </message>
        <message>
            <source>Camera {name} added</source>
            <translation>已添加摄像头 {name}</translation>
        </message>
        <message>
            <source>camera {camera_id} no longer exists</source>
            <translation>摄像头 {camera_id} 已不存在</translation>
        </message>
        <message>
            <source>Camera {name} saved</source>
            <translation>已保存摄像头 {name}</translation>
        </message>
        <message>
            <source>Remove cameras</source>
            <translation>删除摄像头</translation>
        </message>
        <message>
            <source>Remove {names}?
Running cameras are stopped first. Their alert rules are removed with them.</source>
            <translation>删除 {names}？
正在运行的摄像头会先被停止，其告警规则也将一并删除。</translation>
        </message>
        <message>
            <source>Also delete their snapshots and clips now (otherwise they are kept until retention removes them)</source>
            <translation>同时立即删除其快照和片段（否则保留到保留期限后删除）</translation>
        </message>
        <message>
            <source>Remove {names}</source>
            <translation>删除 {names}</translation>
        </message>
        <message>
            <source>Recording a clip of {name}…</source>
            <translation>正在录制 {name} 的片段…</translation>
        </message>
        <message>
            <source>Saved a {d:.1f} s clip of {name} (Evidence page)</source>
            <translation>已保存 {name} 的 {d:.1f} 秒片段（见“证据”页）</translation>
        </message>
        <message>
            <source>No clip of {name}: {err}</source>
            <translation>{name} 没有片段：{err}</translation>
        </message>
        <message>
            <source>Import cameras</source>
            <translation>导入摄像头</translation>
        </message>
        <message>
            <source>Cameras (*.yaml *.yml);;All files (*)</source>
            <translation>摄像头 (*.yaml *.yml);;所有文件 (*)</translation>
        </message>
        <message>
            <source>Remove the cameras that are not in the file?</source>
            <translation>删除文件中没有的摄像头？</translation>
        </message>
        <message>
            <source>Importing {name}: checking every camera, then applying…</source>
            <translation>正在导入 {name}：先检查每个摄像头，然后应用…</translation>
        </message>
        <message>
            <source>Imported {name}: {summary}</source>
            <translation>已导入 {name}：{summary}</translation>
        </message>
        <message>
            <source>Import {name}</source>
            <translation>导入 {name}</translation>
        </message>
        <message>
            <source>Import of {name} failed; nothing was changed.
{text}</source>
            <translation>导入 {name} 失败；未做任何更改。
{text}</translation>
        </message>
        <message>
            <source>Import of {name} failed: {0}</source>
            <translation>导入 {name} 失败：{0}</translation>
        </message>
        <message>
            <source>Import failed</source>
            <translation>导入失败</translation>
        </message>
        <message>
            <source>Export cameras</source>
            <translation>导出摄像头</translation>
        </message>
        <message>
            <source>Cameras (*.yaml *.yml)</source>
            <translation>摄像头 (*.yaml *.yml)</translation>
        </message>
        <message>
            <source>Write passwords in source URLs in clear text?
(No masks them as ***.)</source>
            <translation>以明文写入视频源 URL 中的密码？
（选择“否”则以 *** 遮盖。）</translation>
        </message>
        <message>
            <source> (passwords masked)</source>
            <translation>（密码已遮盖）</translation>
        </message>
        <message>
            <source>Export to {name}</source>
            <translation>导出到 {name}</translation>
        </message>
        <message>
            <source>Exported {n} cameras to {path}{masked}</source>
            <translation>已将 {n} 个摄像头导出到 {path}{masked}</translation>
        </message>
    </context>
    <context>
        <name>CameraDialog</name>
        <message>
            <source>Edit camera — {name}</source>
            <translation>编辑摄像头 — {name}</translation>
        </message>
        <message>
            <source>Add camera</source>
            <translation>添加摄像头</translation>
        </message>
        <message>
            <source>Saving a new source, frame-rate cap, loop, motion or stall setting restarts a running camera once, so the change applies at once.</source>
            <translation>保存新的视频源、帧率上限、循环、运动或停滞设置时，正在运行的摄像头会重启一次，使更改立即生效。</translation>
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
            <source> s</source>
            <translation> 秒</translation>
        </message>
        <message>
            <source>detect motion</source>
            <translation>检测运动</translation>
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
            <source>Motion t&amp;hreshold</source>
            <translation>运动阈值(&amp;H)</translation>
        </message>
        <message>
            <source>Motion &amp;warm-up frames</source>
            <translation>运动检测预热帧数(&amp;W)</translation>
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
        <name>CameraState</name>
        <message>
            <source>inactive</source>
            <extracomment>the worker states as the window shows them (STATE_ROLE keeps the raw value)</extracomment>
            <translation>停用</translation>
        </message>
        <message>
            <source>stopped</source>
            <translation>已停止</translation>
        </message>
        <message>
            <source>starting</source>
            <translation>启动中</translation>
        </message>
        <message>
            <source>running</source>
            <translation>运行中</translation>
        </message>
        <message>
            <source>stalled</source>
            <translation>卡顿</translation>
        </message>
        <message>
            <source>backoff</source>
            <translation>退避等待</translation>
        </message>
        <message>
            <source>stopping</source>
            <translation>停止中</translation>
        </message>
        <message>
            <source>failed</source>
            <translation>失败</translation>
        </message>
    </context>
    <context>
        <name>CameraTableModel</name>
        <message>
            <source>Name</source>
            <extracomment>what a column sorts by: numbers as numbers, text case-insensitively</extracomment>
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
            <translation>运动</translation>
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
        <message>
            <source>error: {error}</source>
            <extracomment>number of dataChanged emissions since creation (the tests and the benchmark read it)</extracomment>
            <translation>错误：{error}</translation>
        </message>
        <message>
            <source>last exit: {reason}</source>
            <translation>上次退出：{reason}</translation>
        </message>
        <message>
            <source>pid {pid}</source>
            <translation>进程号 {pid}</translation>
        </message>
    </context>
    <context>
        <name>CameraTile</name>
        <message>
            <source>waiting for the first frame…</source>
            <extracomment>one per GUI process: every tile of every window asks through it how many frames this tile turned into images (tests and the benchmark read it)</extracomment>
            <translation>正在等待第一帧…</translation>
        </message>
        <message>
            <source>INACTIVE</source>
            <translation>已停用</translation>
        </message>
        <message>
            <source>SOURCE DOWN since {0}</source>
            <translation>视频源自 {0} 起中断</translation>
        </message>
        <message>
            <source>OFFLINE since {0}</source>
            <translation>自 {0} 起离线</translation>
        </message>
        <message>
            <source>deactivated; activate it to start</source>
            <translation>已停用；启用后才能启动</translation>
        </message>
        <message>
            <source>{fps} fps  {state}</source>
            <translation>{fps} 帧/秒  {state}</translation>
        </message>
    </context>
    <context>
        <name>CameraView</name>
        <message>
            <source>running</source>
            <extracomment>what the window shows for a camera (see app.ui.common.formatting.view_state)</extracomment>
            <translation>运行中</translation>
        </message>
        <message>
            <source>no frames yet</source>
            <translation>尚无画面</translation>
        </message>
        <message>
            <source>source down</source>
            <translation>视频源中断</translation>
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
            <source>5 min</source>
            <translation>5 分钟</translation>
        </message>
        <message>
            <source>now</source>
            <translation>现在</translation>
        </message>
        <message>
            <source>{n} min ago</source>
            <translation>{n} 分钟前</translation>
        </message>
        <message>
            <source>15 min</source>
            <translation>15 分钟</translation>
        </message>
        <message>
            <source>1 h</source>
            <translation>1 小时</translation>
        </message>
        <message>
            <source>domain P50</source>
            <extracomment>16 colours that stay apart from each other on white (one per camera up to 16)</extracomment>
            <translation>领域 P50</translation>
        </message>
        <message>
            <source>domain P95</source>
            <translation>领域 P95</translation>
        </message>
        <message>
            <source>domain P99</source>
            <translation>领域 P99</translation>
        </message>
        <message>
            <source>legacy P50</source>
            <translation>旧实现 P50</translation>
        </message>
        <message>
            <source>legacy P95</source>
            <translation>旧实现 P95</translation>
        </message>
        <message>
            <source>legacy P99</source>
            <translation>旧实现 P99</translation>
        </message>
        <message>
            <source>rules errors</source>
            <translation>规则错误率</translation>
        </message>
        <message>
            <source>rules share</source>
            <translation>规则占比</translation>
        </message>
        <message>
            <source>cameras errors</source>
            <translation>摄像头错误率</translation>
        </message>
        <message>
            <source>cameras share</source>
            <translation>摄像头占比</translation>
        </message>
        <message>
            <source>rules domain P95</source>
            <translation>规则 领域 P95</translation>
        </message>
        <message>
            <source>rules legacy P95</source>
            <translation>规则 旧实现 P95</translation>
        </message>
        <message>
            <source>cameras domain P95</source>
            <translation>摄像头 领域 P95</translation>
        </message>
        <message>
            <source>cameras legacy P95</source>
            <translation>摄像头 旧实现 P95</translation>
        </message>
        <message>
            <source>Camera FPS</source>
            <translation>摄像头帧率</translation>
        </message>
        <message>
            <source>Camera CPU</source>
            <translation>摄像头 CPU</translation>
        </message>
        <message>
            <source>Camera memory (RSS)</source>
            <translation>摄像头内存 (RSS)</translation>
        </message>
        <message>
            <source>Camera motion</source>
            <translation>摄像头运动</translation>
        </message>
        <message>
            <source>score</source>
            <translation>分值</translation>
        </message>
        <message>
            <source>Station load</source>
            <translation>工作站负载</translation>
        </message>
        <message>
            <source>CPU</source>
            <translation>CPU</translation>
        </message>
        <message>
            <source>memory</source>
            <translation>内存</translation>
        </message>
        <message>
            <source>disk used</source>
            <translation>磁盘已用</translation>
        </message>
        <message>
            <source>Rollout: domain error rate and share</source>
            <translation>灰度发布：领域错误率与占比</translation>
        </message>
        <message>
            <source>domain error rate</source>
            <translation>领域错误率</translation>
        </message>
        <message>
            <source>domain share</source>
            <translation>领域占比</translation>
        </message>
        <message>
            <source>target %</source>
            <translation>目标 %</translation>
        </message>
        <message>
            <source>Operation latency P50/P95/P99</source>
            <translation>操作延迟 P50/P95/P99</translation>
        </message>
        <message>
            <source>Fallbacks and domain errors (window)</source>
            <translation>回退与领域错误（窗口内）</translation>
        </message>
        <message>
            <source>calls</source>
            <translation>调用</translation>
        </message>
        <message>
            <source>fallbacks</source>
            <translation>回退</translation>
        </message>
        <message>
            <source>domain errors</source>
            <translation>领域错误</translation>
        </message>
        <message>
            <source>Per track: domain error rate and domain share</source>
            <translation>按轨道：领域错误率与领域占比</translation>
        </message>
        <message>
            <source>Per track: P95 latency by path</source>
            <translation>按轨道：各路径 P95 延迟</translation>
        </message>
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
        <name>ClipPlayer</name>
        <message>
            <source>no clip</source>
            <translation>无片段</translation>
        </message>
        <message>
            <source>Play</source>
            <translation>播放</translation>
        </message>
        <message>
            <source>opening the clip…</source>
            <translation>正在打开片段…</translation>
        </message>
        <message>
            <source>Pause</source>
            <translation>暂停</translation>
        </message>
    </context>
    <context>
        <name>EvidencePage</name>
        <message>
            <source>Evidence: –</source>
            <translation>证据：–</translation>
        </message>
        <message>
            <source>Camera</source>
            <translation>摄像头</translation>
        </message>
        <message>
            <source>Snapshots</source>
            <translation>快照</translation>
        </message>
        <message>
            <source>Clips</source>
            <translation>片段</translation>
        </message>
        <message>
            <source>Size</source>
            <translation>大小</translation>
        </message>
        <message>
            <source>Oldest</source>
            <translation>最早</translation>
        </message>
        <message>
            <source>Newest</source>
            <translation>最新</translation>
        </message>
        <message>
            <source>Taken</source>
            <translation>拍摄时间</translation>
        </message>
        <message>
            <source>Kind</source>
            <translation>类型</translation>
        </message>
        <message>
            <source>Moment</source>
            <translation>时刻</translation>
        </message>
        <message>
            <source>Alert event</source>
            <translation>告警事件</translation>
        </message>
        <message>
            <source>Note</source>
            <translation>备注</translation>
        </message>
        <message>
            <source>Delete selected</source>
            <translation>删除所选</translation>
        </message>
        <message>
            <source>could not read the evidence: {0}</source>
            <translation>无法读取证据：{0}</translation>
        </message>
        <message>
            <source>camera {0}</source>
            <translation>摄像头 {0}</translation>
        </message>
        <message>
            <source>station</source>
            <translation>工作站</translation>
        </message>
        <message>
            <source> (removed)</source>
            <translation>（已移除）</translation>
        </message>
        <message>
            <source>{total} of at most {limit:g} MB in {root}; kept {days:g} days; {free} free on the disk (nothing is written under {floor:g} MB){blocked}</source>
            <translation>{root} 中已用 {total}，上限 {limit:g} MB；保留 {days:g} 天；磁盘剩余 {free}（低于 {floor:g} MB 时不再写入）{blocked}</translation>
        </message>
        <message>
            <source> — WRITING STOPPED: the disk is at its floor</source>
            <translation> — 已停止写入：磁盘已到剩余空间下限</translation>
        </message>
    </context>
    <context>
        <name>EvidencePane</name>
        <message>
            <source>Select an alert to see its evidence</source>
            <translation>选择一条告警以查看其证据</translation>
        </message>
        <message>
            <source>When it fired</source>
            <translation>触发时</translation>
        </message>
        <message>
            <source>When it resolved</source>
            <translation>恢复时</translation>
        </message>
        <message>
            <source>Save clip…</source>
            <translation>保存片段…</translation>
        </message>
        <message>
            <source>Save a copy of this alert's clip</source>
            <translation>保存此告警片段的副本</translation>
        </message>
        <message>
            <source>Export event…</source>
            <translation>导出事件…</translation>
        </message>
        <message>
            <source>A ZIP with the event as JSON, its snapshots and its clip</source>
            <translation>一个 ZIP 文件：事件的 JSON、快照和片段</translation>
        </message>
        <message>
            <source>New clip now</source>
            <translation>立即录制片段</translation>
        </message>
        <message>
            <source>Record a clip of this camera now (pre-roll + post-roll)</source>
            <translation>立即录制此摄像头的片段（预录 + 后录）</translation>
        </message>
        <message>
            <source>no snapshot</source>
            <translation>无快照</translation>
        </message>
        <message>
            <source>{w}×{h}, taken {when}</source>
            <translation>{w}×{h}，拍摄于 {when}</translation>
        </message>
        <message>
            <source>Clip: {d:.1f} s with {p:.1f} s before the alert, {size}</source>
            <translation>片段：{d:.1f} 秒，其中告警前 {p:.1f} 秒，{size}</translation>
        </message>
        <message>
            <source>Missing: {0}</source>
            <translation>缺失：{0}</translation>
        </message>
        <message>
            <source>could not read the evidence: {0}</source>
            <translation>无法读取证据：{0}</translation>
        </message>
        <message>
            <source>Save clip</source>
            <translation>保存片段</translation>
        </message>
        <message>
            <source>MP4 video (*.mp4)</source>
            <translation>MP4 视频 (*.mp4)</translation>
        </message>
        <message>
            <source>Export event</source>
            <translation>导出事件</translation>
        </message>
        <message>
            <source>ZIP archive (*.zip)</source>
            <translation>ZIP 压缩包 (*.zip)</translation>
        </message>
        <message>
            <source>Exported to {0}</source>
            <translation>已导出到 {0}</translation>
        </message>
        <message>
            <source>Recording a clip…</source>
            <translation>正在录制片段…</translation>
        </message>
        <message>
            <source>Saved a {d:.1f} s clip ({size})</source>
            <translation>已保存 {d:.1f} 秒的片段（{size}）</translation>
        </message>
        <message>
            <source>No clip: {0}</source>
            <translation>没有片段：{0}</translation>
        </message>
    </context>
    <context>
        <name>ExceptionReporter</name>
        <message>
            <source> in thread {name}</source>
            <extracomment>``1``: quit as soon as the window has painted once (start-up benchmarks and tests)</extracomment>
            <translation>（线程 {name}）</translation>
        </message>
        <message>
            <source>Unexpected error{where}: {kind}: {error}</source>
            <translation>意外错误{where}：{kind}：{error}</translation>
        </message>
        <message>
            <source>Edge Station — unexpected error</source>
            <translation>Edge Station — 意外错误</translation>
        </message>
        <message>
            <source>The station keeps running. The details are in the log.</source>
            <translation>工作站仍在运行。详细信息见日志。</translation>
        </message>
    </context>
    <context>
        <name>FieldError</name>
        <message>
            <source>must not be empty</source>
            <extracomment>the domain's field messages as the window shows them (in its language)</extracomment>
            <translation>不能为空</translation>
        </message>
        <message>
            <source>must be at most 64 characters</source>
            <translation>最多 64 个字符</translation>
        </message>
        <message>
            <source>must be at most 100 characters</source>
            <translation>最多 100 个字符</translation>
        </message>
        <message>
            <source>may contain letters, digits, spaces and . - _ ( ) # /</source>
            <translation>只能包含字母、数字、空格及 . - _ ( ) # /</translation>
        </message>
        <message>
            <source>must be a finite number</source>
            <translation>必须是有限的数字</translation>
        </message>
        <message>
            <source>must be between 0 and 1 (exclusive)</source>
            <translation>必须在 0 到 1 之间（不含端点）</translation>
        </message>
        <message>
            <source>must be greater than 0 and at most 240</source>
            <translation>必须大于 0 且不超过 240</translation>
        </message>
        <message>
            <source>must be greater than 0 and at most 3600 seconds</source>
            <translation>必须大于 0 且不超过 3600 秒</translation>
        </message>
        <message>
            <source>is required when the target is one camera</source>
            <translation>目标为单个摄像头时必须填写</translation>
        </message>
        <message>
            <source>is only allowed when the target is one camera</source>
            <translation>仅在目标为单个摄像头时可填写</translation>
        </message>
        <message>
            <source>must be an http:// or https:// URL with a host</source>
            <translation>必须是带主机名的 http:// 或 https:// 地址</translation>
        </message>
    </context>
    <context>
        <name>FleetPage</name>
        <message>
            <source>, </source>
            <translation>，</translation>
        </message>
        <message>
            <source>Fleet on {where}: {n} stations: {states}</source>
            <translation>{where} 上的工作站集群：{n} 个工作站：{states}</translation>
        </message>
        <message>
            <source>Fleet on {where}: {n} stations</source>
            <translation>{where} 上的工作站集群：{n} 个工作站</translation>
        </message>
        <message>
            <source> (gone after {s} s without a heartbeat; database time {t} UTC)</source>
            <translation>（{s} 秒无心跳即视为失联；数据库时间 {t} UTC）</translation>
        </message>
        <message>
            <source>As 'edge-station fleet status' prints it</source>
            <translation>与 'edge-station fleet status' 的输出相同</translation>
        </message>
        <message>
            <source>Reading the fleet registry…</source>
            <translation>正在读取工作站集群登记表…</translation>
        </message>
        <message>
            <source>The fleet registry cannot be read now; the table shows the last read. {error}</source>
            <translation>目前无法读取工作站集群登记表；表格显示的是上一次读取的结果。{error}</translation>
        </message>
    </context>
    <context>
        <name>FleetTableModel</name>
        <message>
            <source>Station</source>
            <translation>工作站</translation>
        </message>
        <message>
            <source>State</source>
            <translation>状态</translation>
        </message>
        <message>
            <source>Version</source>
            <translation>版本</translation>
        </message>
        <message>
            <source>Host</source>
            <translation>主机</translation>
        </message>
        <message>
            <source>Up since (UTC)</source>
            <translation>启动时间 (UTC)</translation>
        </message>
        <message>
            <source>Last heartbeat</source>
            <translation>最近心跳</translation>
        </message>
        <message>
            <source>Cameras</source>
            <translation>摄像头</translation>
        </message>
        <message>
            <source>Rollout</source>
            <translation>灰度发布</translation>
        </message>
        <message>
            <source>Health</source>
            <translation>健康状况</translation>
        </message>
        <message>
            <source>Clock skew</source>
            <translation>时钟偏差</translation>
        </message>
        <message>
            <source>Problems</source>
            <translation>问题</translation>
        </message>
        <message>
            <source>{name} (this station)</source>
            <translation>{name}（本工作站）</translation>
        </message>
        <message>
            <source>name taken over by {id}</source>
            <translation>名称已被 {id} 接管</translation>
        </message>
        <message>
            <source>no heartbeat since {t} UTC</source>
            <translation>自 {t} UTC 起无心跳</translation>
        </message>
        <message>
            <source>station {id} on host {host}, process {pid}</source>
            <translation>工作站 {id}，主机 {host}，进程 {pid}</translation>
        </message>
        <message>
            <source>last heartbeat {t} UTC (database time)</source>
            <translation>最近心跳 {t} UTC（数据库时间）</translation>
        </message>
        <message>
            <source>the station's clock vs the database's: {s} s (liveness uses the database's clock)</source>
            <translation>工作站时钟与数据库时钟之差：{s} 秒（在线判断以数据库时钟为准）</translation>
        </message>
    </context>
    <context>
        <name>FleetText</name>
        <message>
            <source>up</source>
            <translation>在线</translation>
        </message>
        <message>
            <source>gone</source>
            <translation>失联</translation>
        </message>
        <message>
            <source>stopped</source>
            <translation>已停止</translation>
        </message>
        <message>
            <source>replaced</source>
            <translation>已被替换</translation>
        </message>
        <message>
            <source>ok</source>
            <translation>正常</translation>
        </message>
        <message>
            <source>degraded</source>
            <translation>降级</translation>
        </message>
        <message>
            <source>down</source>
            <translation>宕机</translation>
        </message>
        <message>
            <source>unknown</source>
            <translation>未知</translation>
        </message>
        <message>
            <source>{n} up</source>
            <translation>{n} 个在线</translation>
        </message>
        <message>
            <source>{n} gone</source>
            <translation>{n} 个失联</translation>
        </message>
        <message>
            <source>{n} stopped</source>
            <translation>{n} 个已停止</translation>
        </message>
        <message>
            <source>{n} replaced</source>
            <translation>{n} 个已被替换</translation>
        </message>
        <message>
            <source>{n} s ago</source>
            <translation>{n} 秒前</translation>
        </message>
        <message>
            <source>{n} min ago</source>
            <translation>{n} 分钟前</translation>
        </message>
        <message>
            <source>{n} h ago</source>
            <translation>{n} 小时前</translation>
        </message>
        <message>
            <source>{n} d ago</source>
            <translation>{n} 天前</translation>
        </message>
    </context>
    <context>
        <name>HealthReasons</name>
        <message>
            <source>{msg} ({c} of the calls by the canary)</source>
            <extracomment>English templates marked for translation; the first that matches a reason wins</extracomment>
            <translation>{msg}（其中 {c} 次调用来自金丝雀）</translation>
        </message>
        <message>
            <source>{msg} (the running station applied the rollback {s} s after it; {n} calls were in flight before that)</source>
            <translation>{msg}（运行中的站点在回滚后 {s} 秒应用了回滚；此前有 {n} 次调用正在进行）</translation>
        </message>
        <message>
            <source>{msg} (the running station applied the rollback {s} s after it)</source>
            <translation>{msg}（运行中的站点在回滚后 {s} 秒应用了回滚）</translation>
        </message>
        <message>
            <source>{msg} (limit {limit} x)</source>
            <translation>{msg}（上限 {limit} 倍）</translation>
        </message>
        <message>
            <source>{op}: domain error rate {k}/{n} ({rate}, 95 % interval {lo}-{hi}): above {limit} with 95 % confidence</source>
            <translation>{op}：领域错误率 {k}/{n}（{rate}，95 % 区间 {lo}-{hi}）：以 95 % 置信度高于 {limit}</translation>
        </message>
        <message>
            <source>{op}: domain error rate {k}/{n} ({rate}, 95 % interval {lo}-{hi}): below {limit}</source>
            <translation>{op}：领域错误率 {k}/{n}（{rate}，95 % 区间 {lo}-{hi}）：低于 {limit}</translation>
        </message>
        <message>
            <source>{op}: domain error rate {k}/{n} ({rate}, 95 % interval {lo}-{hi}): inconclusive, {need} more clean calls to tell</source>
            <translation>{op}：领域错误率 {k}/{n}（{rate}，95 % 区间 {lo}-{hi}）：尚无定论，还需 {need} 次无错调用才能判断</translation>
        </message>
        <message>
            <source>{op}: domain error rate {k}/{n} ({rate}, 95 % interval {lo}-{hi}): inconclusive, too many errors to call it healthy</source>
            <translation>{op}：领域错误率 {k}/{n}（{rate}，95 % 区间 {lo}-{hi}）：尚无定论，错误过多，无法判为健康</translation>
        </message>
        <message>
            <source>{op}: end-to-end success {k}/{n} ({rate}, 95 % interval {lo}-{hi}): below {limit} with 95 % confidence</source>
            <translation>{op}：端到端成功率 {k}/{n}（{rate}，95 % 区间 {lo}-{hi}）：以 95 % 置信度低于 {limit}</translation>
        </message>
        <message>
            <source>{op}: end-to-end success {k}/{n} ({rate}, 95 % interval {lo}-{hi}): at least {limit}</source>
            <translation>{op}：端到端成功率 {k}/{n}（{rate}，95 % 区间 {lo}-{hi}）：不低于 {limit}</translation>
        </message>
        <message>
            <source>{op}: end-to-end success {k}/{n} ({rate}, 95 % interval {lo}-{hi}): inconclusive, {need} more successful calls to tell</source>
            <translation>{op}：端到端成功率 {k}/{n}（{rate}，95 % 区间 {lo}-{hi}）：尚无定论，还需 {need} 次成功调用才能判断</translation>
        </message>
        <message>
            <source>{op}: end-to-end success {k}/{n} ({rate}, 95 % interval {lo}-{hi}): inconclusive, too many failures to call it healthy</source>
            <translation>{op}：端到端成功率 {k}/{n}（{rate}，95 % 区间 {lo}-{hi}）：尚无定论，失败过多，无法判为健康</translation>
        </message>
        <message>
            <source>{op}: latency: too few calls to compare (domain {d}, legacy {l}, need {need} each)</source>
            <translation>{op}：延迟：调用太少，无法比较（领域 {d}，旧实现 {l}，各需 {need}）</translation>
        </message>
        <message>
            <source>{op}: domain P95 {d} ms vs legacy P95 {l} ms ({ratio} x, {diff} ms): within the bound</source>
            <translation>{op}：领域 P95 {d} ms 对比旧实现 P95 {l} ms（{ratio} 倍，{diff} ms）：在界限内</translation>
        </message>
        <message>
            <source>{op}: domain P95 {d} ms vs legacy P95 {l} ms ({ratio} x, {diff} ms): under the {floor} ms floor</source>
            <translation>{op}：领域 P95 {d} ms 对比旧实现 P95 {l} ms（{ratio} 倍，{diff} ms）：低于 {floor} ms 下限</translation>
        </message>
        <message>
            <source>{op}: domain P95 {d} ms vs legacy P95 {l} ms ({ratio} x, {diff} ms): above {limit} x in {count} consecutive windows</source>
            <translation>{op}：领域 P95 {d} ms 对比旧实现 P95 {l} ms（{ratio} 倍，{diff} ms）：连续 {count} 个窗口超过 {limit} 倍</translation>
        </message>
        <message>
            <source>{op}: domain P95 {d} ms vs legacy P95 {l} ms ({ratio} x, {diff} ms): above {limit} x in window {count} of {of}</source>
            <translation>{op}：领域 P95 {d} ms 对比旧实现 P95 {l} ms（{ratio} 倍，{diff} ms）：第 {count}/{of} 个窗口超过 {limit} 倍</translation>
        </message>
        <message>
            <source>{track}: no domain calls in the window</source>
            <translation>{track}：窗口内没有领域调用</translation>
        </message>
        <message>
            <source>{track}: not enough domain traffic to judge (inconclusive for {m} min)</source>
            <translation>{track}：领域流量不足，无法判断（已无定论 {m} 分钟）</translation>
        </message>
        <message>
            <source>95 % interval of the error rate &lt;= {limit}</source>
            <translation>错误率的 95 % 区间 &lt;= {limit}</translation>
        </message>
        <message>
            <source>95 % interval of end-to-end success &gt;= {limit}</source>
            <translation>端到端成功率的 95 % 区间 &gt;= {limit}</translation>
        </message>
        <message>
            <source>domain P95 &lt;= {ratio} x legacy P95, or within {floor} ms of it, in {n} consecutive windows</source>
            <translation>领域 P95 &lt;= {ratio} 倍旧实现 P95，或相差不超过 {floor} ms，连续 {n} 个窗口</translation>
        </message>
        <message>
            <source>no rollback latched</source>
            <translation>未锁定回滚</translation>
        </message>
        <message>
            <source>no open problem report</source>
            <translation>没有未解决的问题报告</translation>
        </message>
        <message>
            <source>already at 100 %: there is no further stage</source>
            <translation>已在 100 %：没有下一阶段</translation>
        </message>
        <message>
            <source>`edge-station verify` has not passed yet</source>
            <translation>`edge-station verify` 尚未通过</translation>
        </message>
        <message>
            <source>the last `edge-station verify` is older than the last settings change: run it again</source>
            <translation>上次 `edge-station verify` 早于最近一次设置更改：请重新运行</translation>
        </message>
        <message>
            <source>the last `edge-station verify` passed on this version ({version}), after the last settings change</source>
            <translation>上次 `edge-station verify` 在当前版本（{version}）上、最近一次设置更改之后通过</translation>
        </message>
        <message>
            <source>the last `edge-station verify` failed ({m} mismatches, {f} failures)</source>
            <translation>上次 `edge-station verify` 未通过（{m} 处不一致，{f} 次失败）</translation>
        </message>
        <message>
            <source>held {held} at {stage} % (the plan: at least {hold}; {left} left)</source>
            <translation>已在 {stage} % 保持 {held}（计划：至少 {hold}；还剩 {left}）</translation>
        </message>
        <message>
            <source>held {held} at {stage} % (the plan: at least {hold})</source>
            <translation>已在 {stage} % 保持 {held}（计划：至少 {hold}）</translation>
        </message>
        <message>
            <source>every operation of the {track} track has at least {need} routed domain calls at this stage</source>
            <translation>{track} 轨道的每个操作在本阶段都至少有 {need} 次路由的领域调用</translation>
        </message>
        <message>
            <source>coverage: need {need} routed domain calls of each operation at this stage; unseen on the domain path: {ops}; too few: {low}</source>
            <translation>覆盖：本阶段每个操作需要 {need} 次路由的领域调用；领域路径上未出现：{ops}；太少：{low}</translation>
        </message>
        <message>
            <source>coverage: need {need} routed domain calls of each operation at this stage; unseen on the domain path: {ops}</source>
            <translation>覆盖：本阶段每个操作需要 {need} 次路由的领域调用；领域路径上未出现：{ops}</translation>
        </message>
        <message>
            <source>coverage: need {need} routed domain calls of each operation at this stage; too few: {low}</source>
            <translation>覆盖：本阶段每个操作需要 {need} 次路由的领域调用；太少：{low}</translation>
        </message>
        <message>
            <source>no routed domain call at this stage yet</source>
            <translation>本阶段尚无路由的领域调用</translation>
        </message>
        <message>
            <source>0 errors in {n} routed domain calls</source>
            <translation>{n} 次路由的领域调用中 0 个错误</translation>
        </message>
        <message>
            <source>latency: too few routed calls to compare (domain {d}, legacy {l}, need {need} each)</source>
            <translation>延迟：路由的调用太少，无法比较（领域 {d}，旧实现 {l}，各需 {need}）</translation>
        </message>
        <message>
            <source>{mm} shadow comparison mismatches at this stage (must be 0)</source>
            <translation>本阶段影子比对不一致 {mm} 次（必须为 0）</translation>
        </message>
        <message>
            <source>a rollback of the {track} track is latched ({why}); clear it with `edge-station rollout resume --track {track_id} --reason ...`</source>
            <translation>{track} 轨道的回滚已锁定（{why}）；用 `edge-station rollout resume --track {track_id} --reason ...` 解除</translation>
        </message>
        <message>
            <source>1 open problem report against the {track} track (resolve with `edge-station rollout report resolve ID --note ...`)</source>
            <translation>{track} 轨道有 1 个未解决的问题报告（用 `edge-station rollout report resolve ID --note ...` 解决）</translation>
        </message>
        <message>
            <source>{n} open problem reports against the {track} track (resolve with `edge-station rollout report resolve ID --note ...`)</source>
            <translation>{track} 轨道有 {n} 个未解决的问题报告（用 `edge-station rollout report resolve ID --note ...` 解决）</translation>
        </message>
        <message>
            <source>the last `edge-station verify` ran on version {ran}, not on this version {version}: run it again</source>
            <translation>上次 `edge-station verify` 运行于版本 {ran}，而非当前版本 {version}：请重新运行</translation>
        </message>
        <message>
            <source>{k} errors in {n} routed domain calls: too few calls to show a rate below {limit} (need {need})</source>
            <translation>{n} 次路由的领域调用中 {k} 个错误：调用太少，无法证明错误率低于 {limit}（需要 {need} 次）</translation>
        </message>
        <message>
            <source>domain error rate {rate} over {n} routed calls (must be below {limit})</source>
            <translation>{n} 次路由调用的领域错误率为 {rate}（必须低于 {limit}）</translation>
        </message>
        <message>
            <source>{op}: domain P95 {d} ms is {ratio} x legacy P95 {l} ms</source>
            <translation>{op}：领域 P95 {d} ms 是旧实现 P95 {l} ms 的 {ratio} 倍</translation>
        </message>
        <message>
            <source>no legacy baseline at this stage ({l} legacy, {d} domain calls); judged at the previous stages</source>
            <translation>本阶段没有旧实现基线（旧实现 {l} 次、领域 {d} 次调用）；已在之前的阶段判断</translation>
        </message>
        <message>
            <source>decision point 2: the rules track held 100 % through its gate</source>
            <translation>决策点 2：规则轨道已在 100 % 保持并通过其阶段关卡</translation>
        </message>
        <message>
            <source>decision point 2: the rules track has not held 100 % through its gate ({needs})</source>
            <translation>决策点 2：规则轨道尚未在 100 % 保持并通过其阶段关卡（{needs}）</translation>
        </message>
        <message>
            <source>the rules track is at {percent} %</source>
            <translation>规则轨道处于 {percent} %</translation>
        </message>
        <message>
            <source>decision point 2: the camera operations passed `edge-station verify` after the last change</source>
            <translation>决策点 2：摄像头操作在最近一次更改后通过了 `edge-station verify`</translation>
        </message>
        <message>
            <source>decision point 2: the camera operations have no passing verification after the last change: {why}</source>
            <translation>决策点 2：摄像头操作在最近一次更改后没有通过的验证：{why}</translation>
        </message>
        <message>
            <source>decision point 2: the rollback of the cameras track has not been rehearsed (`edge-station rollout rehearse --track cameras`)</source>
            <translation>决策点 2：摄像头轨道的回滚尚未演练（`edge-station rollout rehearse --track cameras`）</translation>
        </message>
        <message>
            <source>decision point 2: the last rollback rehearsal of the cameras track failed: {why}</source>
            <translation>决策点 2：摄像头轨道上次回滚演练未通过：{why}</translation>
        </message>
        <message>
            <source>decision point 2: the rollback rehearsal ran on version {ran}, not on {version}: rehearse again</source>
            <translation>决策点 2：回滚演练运行于版本 {ran}，而非 {version}：请重新演练</translation>
        </message>
        <message>
            <source>decision point 2: the rollback rehearsal is older than the last settings change</source>
            <translation>决策点 2：回滚演练早于最近一次设置更改</translation>
        </message>
        <message>
            <source>decision point 2: a rollback of the cameras track was rehearsed and verified on a scratch station</source>
            <translation>决策点 2：摄像头轨道的回滚已在临时站点上演练并验证</translation>
        </message>
        <message>
            <source>target domain share of the {track} track is {percent} %</source>
            <translation>{track} 轨道的目标领域份额为 {percent} %</translation>
        </message>
        <message>
            <source>{n} current keys of the {track} track still route to the domain path</source>
            <translation>{track} 轨道仍有 {n} 个当前键路由到领域路径</translation>
        </message>
        <message>
            <source>{n} domain calls (routed, forced or canary) of the {track} track since the rollback</source>
            <translation>回滚以来 {track} 轨道有 {n} 次领域调用（路由、强制或金丝雀）</translation>
        </message>
        <message>
            <source>no domain calls (routed, forced or canary) so far; the window ends {s} s from now</source>
            <translation>目前没有领域调用（路由、强制或金丝雀）；窗口在 {s} 秒后结束</translation>
        </message>
        <message>
            <source>no domain calls (routed, forced or canary) in the {s} s after the rollback</source>
            <translation>回滚后的 {s} 秒内没有领域调用（路由、强制或金丝雀）</translation>
        </message>
        <message>
            <source>{n} shadow comparisons on the domain path of the {track} track since the rollback</source>
            <translation>回滚以来 {track} 轨道在领域路径上有 {n} 次影子比对</translation>
        </message>
        <message>
            <source>no shadow comparisons on the domain path so far; the window ends {s} s from now</source>
            <translation>目前领域路径上没有影子比对；窗口在 {s} 秒后结束</translation>
        </message>
        <message>
            <source>no shadow comparisons on the domain path in the {s} s after the rollback</source>
            <translation>回滚后的 {s} 秒内领域路径上没有影子比对</translation>
        </message>
        <message>
            <source>legacy error rate {rate} over {n} calls since the rollback</source>
            <translation>回滚以来 {n} 次调用的旧实现错误率为 {rate}</translation>
        </message>
        <message>
            <source>{n} legacy calls ({e} errors) so far; judged when the window ends</source>
            <translation>目前 {n} 次旧实现调用（{e} 个错误）；窗口结束时判断</translation>
        </message>
        <message>
            <source>{n} legacy calls ({e} errors) of the {track} track since the rollback: too few to judge; run some of its operations and check again</source>
            <translation>回滚以来 {track} 轨道 {n} 次旧实现调用（{e} 个错误）：太少，无法判断；请运行它的一些操作后再检查</translation>
        </message>
        <message>
            <source>&lt;= {limit} x legacy P95</source>
            <translation>&lt;= {limit} 倍旧实现 P95</translation>
        </message>
        <message>
            <source>&lt; {limit}</source>
            <translation>错误率 &lt; {limit}</translation>
        </message>
        <message>
            <source>&lt;= {limit}</source>
            <translation>错误率 &lt;= {limit}</translation>
        </message>
        <message>
            <source>rules</source>
            <extracomment>the parts of a reason that are reasons in their turn (joined with "; ") and translated too the rollout's track names, as reasons and the page name them</extracomment>
            <translation>规则</translation>
        </message>
        <message>
            <source>cameras</source>
            <translation>摄像头</translation>
        </message>
        <message>
            <source>pass</source>
            <translation>通过</translation>
        </message>
        <message>
            <source>fail</source>
            <translation>未通过</translation>
        </message>
        <message>
            <source>inconclusive</source>
            <translation>无定论</translation>
        </message>
        <message>
            <source>pending</source>
            <translation>待定</translation>
        </message>
        <message>
            <source>ok</source>
            <translation>正常</translation>
        </message>
        <message>
            <source>alert</source>
            <translation>告警</translation>
        </message>
    </context>
    <context>
        <name>KioskWindow</name>
        <message>
            <source>Kiosk</source>
            <translation>展台模式</translation>
        </message>
        <message>
            <source>Settings (operator PIN)</source>
            <translation>设置（需要操作员 PIN）</translation>
        </message>
        <message>
            <source>page {page}/{pages}</source>
            <translation>第 {page}/{pages} 页</translation>
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
        <message>
            <source>When the alert fired</source>
            <translation>告警触发时</translation>
        </message>
    </context>
    <context>
        <name>LogsDialog</name>
        <message>
            <source>Logs — {name}</source>
            <translation>日志 — {name}</translation>
        </message>
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
        <message>
            <source>{0} lines, read at {1}</source>
            <translation>{0} 行，读取于 {1}</translation>
        </message>
        <message>
            <source>could not read the logs: {0}</source>
            <translation>无法读取日志：{0}</translation>
        </message>
    </context>
    <context>
        <name>MainWindow</name>
        <message>
            <source>Edge Station</source>
            <translation>Edge Station</translation>
        </message>
        <message>
            <source>Filter cameras by name, state or source (Ctrl+F)</source>
            <translation>按名称、状态或视频源筛选摄像头（Ctrl+F）</translation>
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
            <source>Settings saved</source>
            <translation>设置已保存</translation>
        </message>
        <message>
            <source>Station open: {n} cameras</source>
            <translation>工作站已打开：{n} 个摄像头</translation>
        </message>
        <message>
            <source>The station could not open: {0}</source>
            <translation>工作站无法打开：{0}</translation>
        </message>
        <message>
            <source>Edge Station cannot start</source>
            <translation>Edge Station 无法启动</translation>
        </message>
        <message>
            <source>The station could not open:
{err}

Run 'edge-station doctor' for a check of this machine, or see the log.</source>
            <translation>工作站无法打开：
{err}

请运行 “edge-station doctor” 检查本机，或查看日志。</translation>
        </message>
        <message>
            <source>Evidence</source>
            <translation>证据</translation>
        </message>
        <message>
            <source>Fleet</source>
            <translation>工作站集群</translation>
        </message>
    </context>
    <context>
        <name>NeedsTable</name>
        <message>
            <source>Operation</source>
            <translation>操作</translation>
        </message>
        <message>
            <source>More domain calls</source>
            <translation>还需领域调用</translation>
        </message>
        <message>
            <source>More legacy calls</source>
            <translation>还需旧实现调用</translation>
        </message>
        <message>
            <source>cannot become healthy in this window</source>
            <translation>本窗口内无法判为健康</translation>
        </message>
    </context>
    <context>
        <name>Notifier</name>
        <message>
            <source>Edge Station</source>
            <translation>Edge Station</translation>
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
        <name>ProbeDialog</name>
        <message>
            <source>Probe — {name}</source>
            <translation>探测 — {name}</translation>
        </message>
        <message>
            <source>Opening the source of {name} (up to {timeout:g} s)…</source>
            <translation>正在打开 {name} 的视频源（最多 {timeout:g} 秒）…</translation>
        </message>
        <message>
            <source>✔ The source answered in {elapsed:.1f} s.</source>
            <translation>✔ 视频源在 {elapsed:.1f} 秒内响应。</translation>
        </message>
        <message>
            <source>Codec</source>
            <translation>编解码器</translation>
        </message>
        <message>
            <source>Size</source>
            <translation>尺寸</translation>
        </message>
        <message>
            <source>FPS</source>
            <translation>帧率</translation>
        </message>
        <message>
            <source>Pixel format</source>
            <translation>像素格式</translation>
        </message>
        <message>
            <source>✘ The source did not open: {error}</source>
            <translation>✘ 视频源无法打开：{error}</translation>
        </message>
        <message>
            <source>Error</source>
            <translation>错误</translation>
        </message>
        <message>
            <source>unknown</source>
            <translation>未知</translation>
        </message>
        <message>
            <source>Elapsed</source>
            <translation>耗时</translation>
        </message>
        <message>
            <source>{elapsed:.1f} s</source>
            <translation>{elapsed:.1f} 秒</translation>
        </message>
        <message>
            <source>✘ Probe failed: {error}</source>
            <translation>✘ 探测失败：{error}</translation>
        </message>
    </context>
    <context>
        <name>RolloutPage</name>
        <message>
            <source>Rollout: –</source>
            <translation>灰度发布：–</translation>
        </message>
        <message>
            <source>Run verification</source>
            <translation>运行验证</translation>
        </message>
        <message>
            <source>Rehearse a cameras rollback</source>
            <translation>演练摄像头轨道回滚</translation>
        </message>
        <message>
            <source>decision point 2: roll the cameras track back on a scratch station and verify that no domain code runs afterwards</source>
            <translation>决策点 2：在临时站点上回滚摄像头轨道，并验证之后不再运行任何领域代码</translation>
        </message>
        <message>
            <source>Roll back all tracks</source>
            <translation>回滚所有轨道</translation>
        </message>
        <message>
            <source>Health: –</source>
            <translation>健康状况：–</translation>
        </message>
        <message>
            <source>Operation</source>
            <translation>操作</translation>
        </message>
        <message>
            <source>Path</source>
            <translation>路径</translation>
        </message>
        <message>
            <source>Calls</source>
            <translation>调用次数</translation>
        </message>
        <message>
            <source>Errors</source>
            <translation>错误</translation>
        </message>
        <message>
            <source>Fallbacks</source>
            <translation>回退次数</translation>
        </message>
        <message>
            <source>P50 ms</source>
            <translation>P50 毫秒</translation>
        </message>
        <message>
            <source>P95 ms</source>
            <translation>P95 毫秒</translation>
        </message>
        <message>
            <source>P99 ms</source>
            <translation>P99 毫秒</translation>
        </message>
        <message>
            <source>Cancel</source>
            <translation>取消</translation>
        </message>
        <message>
            <source>stop the verification before its next step; nothing is recorded</source>
            <translation>在下一步之前停止验证；不会记录任何结果</translation>
        </message>
        <message>
            <source>Verification runs every operation on a scratch station, forced to legacy and to domain, and compares the answers.</source>
            <translation>验证会在临时工作站上分别强制使用旧版实现和领域实现运行每个操作，并比较结果。</translation>
        </message>
        <message>
            <source>Calls in the health window</source>
            <translation>健康窗口内的调用</translation>
        </message>
        <message>
            <source>could not read the rollout state: {err}</source>
            <translation>无法读取灰度发布状态：{err}</translation>
        </message>
        <message>
            <source>{track} ROLLED BACK</source>
            <translation>{track} 已回滚</translation>
        </message>
        <message>
            <source>{track} legacy</source>
            <translation>{track} 旧实现</translation>
        </message>
        <message>
            <source>{track} {percent} %</source>
            <translation>{track} {percent} %</translation>
        </message>
        <message>
            <source>Rollout: {tracks}</source>
            <translation>发布：{tracks}</translation>
        </message>
        <message>
            <source>canary {rate} calls/min</source>
            <translation>金丝雀 {rate} 次/分钟</translation>
        </message>
        <message>
            <source>canary off</source>
            <translation>金丝雀已关闭</translation>
        </message>
        <message>
            <source>shadow rate {rate}</source>
            <translation>影子比较比例 {rate}</translation>
        </message>
        <message>
            <source>last rehearsal: {ok} at {when}</source>
            <translation>上次演练：{when} {ok}</translation>
        </message>
        <message>
            <source>Send every call of the {track} track(s) to the legacy implementation now?
The rollback is recorded and its checklist verified.</source>
            <translation>现在把 {track} 轨道的所有调用都交给旧实现吗？
回滚会被记录，其检查清单会被验证。</translation>
        </message>
        <message>
            <source>Resume the {track} track</source>
            <translation>恢复 {track} 轨道</translation>
        </message>
        <message>
            <source>What was found and fixed? (recorded in the audit log)</source>
            <translation>发现并修复了什么？（记入审计日志）</translation>
        </message>
        <message>
            <source>Report a problem ({track} track)</source>
            <translation>报告问题（{track} 轨道）</translation>
        </message>
        <message>
            <source>What went wrong? (the track's gate holds until the report is resolved)</source>
            <translation>出了什么问题？（在报告解决之前，该轨道的关卡保持不放行）</translation>
        </message>
        <message>
            <source>Resolve report #{id}</source>
            <translation>解决报告 #{id}</translation>
        </message>
        <message>
            <source>What was found or done?</source>
            <translation>发现了什么或做了什么？</translation>
        </message>
        <message>
            <source>the rehearsal could not run: {error}</source>
            <translation>演练无法运行：{error}</translation>
        </message>
        <message>
            <source>step {number} of {total}: {path} {operation} ({case})</source>
            <translation>第 {number}/{total} 步：{path} {operation}（{case}）</translation>
        </message>
        <message>
            <source>Cancelling…</source>
            <translation>正在取消…</translation>
        </message>
        <message>
            <source>auto-rollback on</source>
            <translation>自动回滚已开启</translation>
        </message>
        <message>
            <source>auto-rollback off</source>
            <translation>自动回滚已关闭</translation>
        </message>
        <message>
            <source>Health over {0:.0f} s: {1}</source>
            <translation>{0:.0f} 秒内的健康状况：{1}</translation>
        </message>
        <message>
            <source>Health over {0:.0f} s: not judged, no track routes calls to the domain path</source>
            <translation>{0:.0f} 秒内的健康状况：未评判，没有轨道把调用路由到领域路径</translation>
        </message>
        <message>
            <source>FAILED</source>
            <translation>失败</translation>
        </message>
        <message>
            <source>passed</source>
            <translation>通过</translation>
        </message>
        <message>
            <source>no rollback rehearsal yet</source>
            <translation>尚未演练回滚</translation>
        </message>
        <message>
            <source>Last verification: {ok} at {0} ({1} mismatches, {2} failures)</source>
            <translation>上次验证：{ok}，时间 {0}（{1} 处不一致，{2} 处失败）</translation>
        </message>
        <message>
            <source>Last verification: never (the gate needs one)</source>
            <translation>上次验证：从未（门禁需要一次验证）</translation>
        </message>
        <message>
            <source>{what} failed: {text}</source>
            <translation>{what} 失败：{text}</translation>
        </message>
        <message>
            <source>Advance with an override</source>
            <translation>越过关卡推进</translation>
        </message>
        <message>
            <source>The stage gate holds. Why advance anyway? (recorded in the audit log)</source>
            <translation>阶段关卡未放行。为什么仍要推进？（记入审计日志）</translation>
        </message>
        <message>
            <source>Roll back</source>
            <translation>回滚</translation>
        </message>
        <message>
            <source>preparing the scratch station…</source>
            <translation>正在准备临时工作站…</translation>
        </message>
        <message>
            <source>verification cancelled: nothing was recorded for the gate</source>
            <translation>验证已取消：未为关卡记录任何结果</translation>
        </message>
        <message>
            <source>verification could not run: {error}</source>
            <translation>验证无法运行：{error}</translation>
        </message>
    </context>
    <context>
        <name>RuleDialog</name>
        <message>
            <source>Edit rule — {name}</source>
            <translation>编辑规则 — {name}</translation>
        </message>
        <message>
            <source>New alert rule</source>
            <translation>新建告警规则</translation>
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
            <source>Filter rules by name, target or condition</source>
            <translation>按名称、目标或条件筛选规则</translation>
        </message>
        <message>
            <source>On</source>
            <translation>启用</translation>
        </message>
        <message>
            <source>Name</source>
            <translation>名称</translation>
        </message>
        <message>
            <source>Target</source>
            <translation>目标</translation>
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
            <source>Severity</source>
            <translation>严重程度</translation>
        </message>
        <message>
            <source>Notify</source>
            <translation>通知</translation>
        </message>
        <message>
            <source>Version</source>
            <translation>版本</translation>
        </message>
        <message>
            <source>blank rule</source>
            <translation>空白规则</translation>
        </message>
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
        <message>
            <source>could not read the rules: {0}</source>
            <translation>无法读取规则：{0}</translation>
        </message>
        <message>
            <source>camera {name}</source>
            <translation>摄像头 {name}</translation>
        </message>
        <message>
            <source>desktop</source>
            <translation>桌面</translation>
        </message>
        <message>
            <source>sound</source>
            <translation>声音</translation>
        </message>
        <message>
            <source>webhook</source>
            <translation>Webhook</translation>
        </message>
        <message>
            <source>command</source>
            <translation>命令</translation>
        </message>
        <message>
            <source>Enable</source>
            <translation>启用</translation>
        </message>
        <message>
            <source>rule {name} saved</source>
            <translation>已保存规则 {name}</translation>
        </message>
        <message>
            <source>enable {name}</source>
            <translation>启用 {name}</translation>
        </message>
        <message>
            <source>disable {name}</source>
            <translation>禁用 {name}</translation>
        </message>
        <message>
            <source>Delete rule</source>
            <translation>删除规则</translation>
        </message>
        <message>
            <source>Delete the rule {name!r}?</source>
            <translation>删除规则 {name!r}？</translation>
        </message>
        <message>
            <source>delete {name}</source>
            <translation>删除 {name}</translation>
        </message>
        <message>
            <source>{what} failed: {0}</source>
            <translation>{what} 失败：{0}</translation>
        </message>
        <message>
            <source>{what}: done</source>
            <translation>{what}：完成</translation>
        </message>
    </context>
    <context>
        <name>SettingsDialog</name>
        <message>
            <source>Settings</source>
            <translation>设置</translation>
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
            <source>Health window</source>
            <translation>健康窗口</translation>
        </message>
        <message>
            <source>Max domain error rate</source>
            <translation>领域错误率上限</translation>
        </message>
        <message>
            <source>Min end-to-end success</source>
            <translation>端到端成功率下限</translation>
        </message>
        <message>
            <source>Max P95 ratio (domain/legacy)</source>
            <translation>P95 比值上限（领域/旧实现）</translation>
        </message>
        <message>
            <source>Min calls per path</source>
            <translation>每条路径最少调用数</translation>
        </message>
        <message>
            <source>Gate: max error rate</source>
            <translation>关卡：错误率上限</translation>
        </message>
        <message>
            <source>Gate: min routed domain calls per operation</source>
            <translation>关卡：每个操作最少路由领域调用数</translation>
        </message>
        <message>
            <source>Gate: min calls per path for latency</source>
            <translation>关卡：延迟比较每条路径最少调用数</translation>
        </message>
        <message>
            <source>Hold at 10 %</source>
            <translation>10 % 阶段保持</translation>
        </message>
        <message>
            <source>Hold at 25 %</source>
            <translation>25 % 阶段保持</translation>
        </message>
        <message>
            <source>Hold at 50 %</source>
            <translation>50 % 阶段保持</translation>
        </message>
        <message>
            <source>Hold at 100 % (until complete)</source>
            <translation>100 % 阶段保持（直至完成）</translation>
        </message>
        <message>
            <source>Latency: failing windows in a row before an alert</source>
            <translation>延迟：告警前连续不合格窗口数</translation>
        </message>
        <message>
            <source>Latency: P95 difference never a regression up to</source>
            <translation>延迟：P95 差值不超过此值不算退化</translation>
        </message>
        <message>
            <source>Errors: failed calls before a bound can fire</source>
            <translation>错误：界限触发前最少失败调用数</translation>
        </message>
        <message>
            <source>Warn when inconclusive for longer than</source>
            <translation>无定论超过此时长时警告</translation>
        </message>
        <message>
            <source>Shadow compare rate</source>
            <translation>影子比对比例</translation>
        </message>
        <message>
            <source>Canary calls (read-only, routed)</source>
            <translation>金丝雀调用（只读，按路由）</translation>
        </message>
        <message>
            <source>Rollout</source>
            <translation>灰度发布</translation>
        </message>
        <message>
            <source>Set with --data-dir / EDGE_STATION_DATA_DIR and --db / EDGE_STATION_DB; a change takes effect when the station starts again.</source>
            <translation>通过 --data-dir / EDGE_STATION_DATA_DIR 和 --db / EDGE_STATION_DB 设置；更改在工作站重新启动后生效。</translation>
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
            <source>System language</source>
            <translation>跟随系统语言</translation>
        </message>
        <message>
            <source>Language</source>
            <translation>语言</translation>
        </message>
        <message>
            <source>General</source>
            <translation>常规</translation>
        </message>
        <message>
            <source>Takes effect when the window starts again.</source>
            <translation>窗口下次启动时生效。</translation>
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
            <source>fit every camera</source>
            <translation>显示全部摄像头</translation>
        </message>
        <message>
            <source> s</source>
            <translation> 秒</translation>
        </message>
        <message>
            <source>The API is off.</source>
            <translation>API 已关闭。</translation>
        </message>
        <message>
            <source>Running on {host}:{port}.</source>
            <translation>正在 {host}:{port} 上运行。</translation>
        </message>
        <message>
            <source>⚠ Not running: {error}. Choose another port and save; the API starts again at once.</source>
            <translation>⚠ 未运行：{error}。请选择其他端口并保存，API 会立即重新启动。</translation>
        </message>
        <message>
            <source>off</source>
            <translation>关闭</translation>
        </message>
        <message>
            <source>start the window as a kiosk (fullscreen wall, PIN to leave)</source>
            <translation>以展台模式启动窗口（全屏监控墙，凭 PIN 退出）</translation>
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
            <source>{track} track</source>
            <translation>{track} 轨道</translation>
        </message>
        <message>
            <source>domain path on</source>
            <translation>启用领域路径</translation>
        </message>
        <message>
            <source>only to raise the share past the gate (audited)</source>
            <translation>仅用于越过关卡提高占比（会审计）</translation>
        </message>
        <message>
            <source>Percent</source>
            <translation>百分比</translation>
        </message>
        <message>
            <source>Override reason</source>
            <translation>越过理由</translation>
        </message>
        <message>
            <source> calls/min</source>
            <translation> 次/分钟</translation>
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
            <translation>运动阈值</translation>
        </message>
        <message>
            <source>Used for cameras added from the window.</source>
            <translation>用于从窗口添加的摄像头。</translation>
        </message>
        <message>
            <source>Camera defaults</source>
            <translation>摄像头默认值</translation>
        </message>
        <message>
            <source>{LOCK} locked by the environment: {shown} (unset {var} to change it here)</source>
            <translation>{LOCK} 已被环境变量锁定：{shown}（取消设置 {var} 后可在此更改）</translation>
        </message>
        <message>
            <source>locked by {var}</source>
            <translation>已被 {var} 锁定</translation>
        </message>
        <message>
            <source>{LOCK} rolled back ({reason}): clear the latch with Resume on the rollout page</source>
            <translation>{LOCK} 已回滚（{reason}）：请在发布页面用“恢复”解除锁定</translation>
        </message>
        <message>
            <source>a PIN is set</source>
            <translation>已设置 PIN</translation>
        </message>
        <message>
            <source>no PIN set (kiosk exit is not protected)</source>
            <translation>未设置 PIN（退出展台模式不受保护）</translation>
        </message>
    </context>
    <context>
        <name>SnapshotDialog</name>
        <message>
            <source>Snapshot — {name}</source>
            <translation>快照 — {name}</translation>
        </message>
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
        <message>
            <source>{width}×{height}, taken {0} (frame {seq})</source>
            <translation>{width}×{height}，拍摄于 {0}（第 {seq} 帧）</translation>
        </message>
        <message>
            <source>No snapshot: {0}</source>
            <translation>没有快照：{0}</translation>
        </message>
        <message>
            <source>Save snapshot</source>
            <translation>保存快照</translation>
        </message>
        <message>
            <source>PNG (*.png)</source>
            <translation>PNG (*.png)</translation>
        </message>
    </context>
    <context>
        <name>StatsDialog</name>
        <message>
            <source>Stats — {name}</source>
            <translation>统计 — {name}</translation>
        </message>
        <message>
            <source>Running</source>
            <translation>运行中</translation>
        </message>
        <message>
            <source>PID</source>
            <translation>进程号</translation>
        </message>
        <message>
            <source>CPU</source>
            <translation>CPU</translation>
        </message>
        <message>
            <source>Memory (RSS)</source>
            <translation>内存 (RSS)</translation>
        </message>
        <message>
            <source>Threads</source>
            <translation>线程数</translation>
        </message>
        <message>
            <source>Children</source>
            <translation>子进程</translation>
        </message>
        <message>
            <source>Frame rate</source>
            <translation>帧率</translation>
        </message>
        <message>
            <source>Frames</source>
            <translation>帧</translation>
        </message>
        <message>
            <source>Motion</source>
            <translation>运动</translation>
        </message>
        <message>
            <source>Samples</source>
            <translation>样本数</translation>
        </message>
        <message>
            <source>…</source>
            <translation>…</translation>
        </message>
        <message>
            <source>Refresh</source>
            <translation>刷新</translation>
        </message>
        <message>
            <source>yes</source>
            <translation>是</translation>
        </message>
        <message>
            <source>no</source>
            <translation>否</translation>
        </message>
        <message>
            <source>{fps} over {window_s:g} s</source>
            <translation>{window_s:g} 秒内 {fps}</translation>
        </message>
        <message>
            <source>{decoded} decoded, {dropped} dropped</source>
            <translation>已解码 {decoded}，丢弃 {dropped}</translation>
        </message>
        <message>
            <source>{motion_avg:.3f} avg</source>
            <translation>平均 {motion_avg:.3f}</translation>
        </message>
    </context>
    <context>
        <name>StatusBar</name>
        <message>
            <source>{track} ROLLED BACK</source>
            <translation>{track} 已回滚</translation>
        </message>
        <message>
            <source>{track}: rollback latched: {reason}</source>
            <translation>{track}：回滚已锁定：{reason}</translation>
        </message>
        <message>
            <source>no reason given</source>
            <translation>未给出原因</translation>
        </message>
        <message>
            <source>{track} legacy</source>
            <translation>{track} 旧实现</translation>
        </message>
        <message>
            <source>{track}: every call on the legacy implementation</source>
            <translation>{track}：所有调用都走旧实现</translation>
        </message>
        <message>
            <source>{track} {percent} %</source>
            <translation>{track} {percent} %</translation>
        </message>
        <message>
            <source>{track}: {percent} % of keys on the domain path (stage {stage} %)</source>
            <translation>{track}：{percent} % 的键在领域路径上（阶段 {stage} %）</translation>
        </message>
        <message>
            <source>legacy</source>
            <translation>旧实现</translation>
        </message>
        <message>
            <source>locked by {variables}</source>
            <translation>被环境变量锁定：{variables}</translation>
        </message>
    </context>
    <context>
        <name>TrackPanel</name>
        <message>
            <source>Rules track (alert-rule writes, first)</source>
            <translation>规则轨道（告警规则写入，先发布）</translation>
        </message>
        <message>
            <source>Cameras track (camera operations, second)</source>
            <translation>摄像头轨道（摄像头操作，后发布）</translation>
        </message>
        <message>
            <source>Advance</source>
            <translation>推进</translation>
        </message>
        <message>
            <source>Advance with override…</source>
            <translation>越过关卡推进…</translation>
        </message>
        <message>
            <source>Roll back</source>
            <translation>回滚</translation>
        </message>
        <message>
            <source>Resume…</source>
            <translation>恢复…</translation>
        </message>
        <message>
            <source>Report a problem…</source>
            <translation>报告问题…</translation>
        </message>
        <message>
            <source>Stage gate: –</source>
            <translation>阶段关卡：–</translation>
        </message>
        <message>
            <source>Open problem reports: none</source>
            <translation>未解决的问题报告：无</translation>
        </message>
        <message>
            <source>#</source>
            <translation>#</translation>
        </message>
        <message>
            <source>Stage</source>
            <translation>阶段</translation>
        </message>
        <message>
            <source>By</source>
            <translation>报告人</translation>
        </message>
        <message>
            <source>Problem</source>
            <translation>问题</translation>
        </message>
        <message>
            <source>Resolve selected report…</source>
            <translation>解决所选报告…</translation>
        </message>
        <message>
            <source>ROLLED BACK — every call on legacy</source>
            <translation>已回滚 — 所有调用走旧实现</translation>
        </message>
        <message>
            <source>COMPLETE at 100 % — legacy may be retired</source>
            <translation>已在 100 % 完成 — 可以停用旧实现</translation>
        </message>
        <message>
            <source>legacy (stage 0 %)</source>
            <translation>旧实现（阶段 0 %）</translation>
        </message>
        <message>
            <source>stage {stage} % · domain {percent} %</source>
            <translation>阶段 {stage} % · 领域 {percent} %</translation>
        </message>
        <message>
            <source>latched {when}: {reason}</source>
            <translation>{when} 锁定：{reason}</translation>
        </message>
        <message>
            <source>held {held} of {hold} · {left} left</source>
            <translation>已保持 {held}，共需 {hold} · 还剩 {left}</translation>
        </message>
        <message>
            <source>actual call share {share}</source>
            <translation>实际调用占比 {share}</translation>
        </message>
        <message>
            <source>{population}: {domain}/{keys} keys on domain</source>
            <translation>{population}：{domain}/{keys} 个键在领域路径</translation>
        </message>
        <message>
            <source>🔒 set by the environment: {variables}</source>
            <translation>🔒 由环境变量设置：{variables}</translation>
        </message>
        <message>
            <source>Stage gate at 100 %: complete</source>
            <translation>100 % 阶段关卡：已完成</translation>
        </message>
        <message>
            <source>Stage gate at 100 %: holding until the track is complete</source>
            <translation>100 % 阶段关卡：保持直到轨道完成</translation>
        </message>
        <message>
            <source>PASSED</source>
            <translation>通过</translation>
        </message>
        <message>
            <source>holding</source>
            <translation>保持中</translation>
        </message>
        <message>
            <source>Stage gate {current} % → {next} %: {verdict}</source>
            <translation>阶段关卡 {current} % → {next} %：{verdict}</translation>
        </message>
        <message>
            <source>still needs {n} item(s)</source>
            <translation>还需要 {n} 项</translation>
        </message>
        <message>
            <source>complete</source>
            <translation>已完成</translation>
        </message>
        <message>
            <source>FAILED</source>
            <translation>失败</translation>
        </message>
        <message>
            <source>in progress</source>
            <translation>进行中</translation>
        </message>
        <message>
            <source>Rollback checklist (verified): {state}</source>
            <translation>回滚检查清单（已验证）：{state}</translation>
        </message>
        <message>
            <source>Open problem reports: {n} (they hold the gate)</source>
            <translation>未解决的问题报告：{n}（它们使关卡保持不放行）</translation>
        </message>
        <message>
            <source>Health cannot judge {n} operation(s) yet: calls still needed in one window</source>
            <translation>健康检查尚无法判断 {n} 个操作：单个窗口内还需的调用数</translation>
        </message>
        <message>
            <source>Advance to {0} %</source>
            <translation>推进到 {0} %</translation>
        </message>
        <message>
            <source>locked by the environment</source>
            <translation>被环境变量锁定</translation>
        </message>
        <message>
            <source>the stage gate holds: see the checks</source>
            <translation>阶段关卡未放行：请查看检查项</translation>
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
    <context>
        <name>WindowMenus</name>
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
            <source>Add &amp;camera…</source>
            <translation>添加摄像头(&amp;C)…</translation>
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
            <source>Save cl&amp;ip</source>
            <translation>保存片段(&amp;I)</translation>
        </message>
        <message>
            <source>Record a clip of the selected camera now: pre-roll from its buffer + post-roll</source>
            <translation>立即录制所选摄像头的片段：缓冲中的预录 + 后录</translation>
        </message>
        <message>
            <source>Pro&amp;be source…</source>
            <translation>探测视频源(&amp;B)…</translation>
        </message>
        <message>
            <source>Pr&amp;ocess stats…</source>
            <translation>进程统计(&amp;O)…</translation>
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
            <source>&amp;Keyboard shortcuts</source>
            <translation>键盘快捷键(&amp;K)</translation>
        </message>
        <message>
            <source>&amp;About Edge Station</source>
            <translation>关于 Edge Station(&amp;A)</translation>
        </message>
        <message>
            <source>Wall full screen</source>
            <translation>监控墙全屏</translation>
        </message>
        <message>
            <source>Filter cameras</source>
            <translation>筛选摄像头</translation>
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
        <message>
            <source>&amp;Help</source>
            <translation>帮助(&amp;H)</translation>
        </message>
        <message>
            <source>Keyboard shortcuts</source>
            <translation>键盘快捷键</translation>
        </message>
        <message>
            <source>&lt;b&gt;Edge Station {version}&lt;/b&gt;&lt;p&gt;A camera station: supervised workers per camera, alerts, a live wall and a kiosk.&lt;/p&gt;&lt;p&gt;Data dir: {data_dir}&lt;/p&gt;</source>
            <translation>&lt;b&gt;Edge Station {version}&lt;/b&gt;&lt;p&gt;摄像头工作站：每个摄像头一个受监管的工作进程、告警、实时画面墙和展台模式。&lt;/p&gt;&lt;p&gt;数据目录：{data_dir}&lt;/p&gt;</translation>
        </message>
        <message>
            <source>About Edge Station</source>
            <translation>关于 Edge Station</translation>
        </message>
    </context>
    <context>
        <name>WindowStatus</name>
        <message>
            <source>CPU – · RAM – · disk –</source>
            <translation>CPU – · 内存 – · 磁盘 –</translation>
        </message>
        <message>
            <source>alerts –</source>
            <translation>告警 –</translation>
        </message>
        <message>
            <source>rollout –</source>
            <translation>灰度发布 –</translation>
        </message>
        <message>
            <source>Show window</source>
            <translation>显示窗口</translation>
        </message>
        <message>
            <source>CPU {cpu_percent:.0f} % · RAM {memory_percent:.0f} % · disk {0} free</source>
            <translation>CPU {cpu_percent:.0f} % · 内存 {memory_percent:.0f} % · 磁盘剩余 {0}</translation>
        </message>
        <message>
            <source>station CPU and memory; {0} free on the data dir's disk ({1:.0f} % of its size)</source>
            <translation>工作站 CPU 与内存；数据目录所在磁盘剩余 {0}（占其容量的 {1:.0f} %）</translation>
        </message>
        <message>
            <source>no alert engine in this station</source>
            <translation>此工作站没有告警引擎</translation>
        </message>
        <message>
            <source>⚠ {alerts_firing} alerts ({un} new)</source>
            <translation>⚠ {alerts_firing} 条告警（{un} 条新告警）</translation>
        </message>
        <message>
            <source>no alerts</source>
            <translation>无告警</translation>
        </message>
        <message>
            <source>{alerts_firing} firing, {un} not acknowledged</source>
            <translation>{alerts_firing} 条触发中，{un} 条未确认</translation>
        </message>
        <message>
            <source>rollout: {rollout}</source>
            <translation>灰度发布：{rollout}</translation>
        </message>
        <message>
            <source>⚠ API not running: port {port} taken</source>
            <translation>⚠ API 未运行：端口 {port} 已被占用</translation>
        </message>
        <message>
            <source>⚠ API not running</source>
            <translation>⚠ API 未运行</translation>
        </message>
        <message>
            <source>The local control API is not running: {error}. Pick another port in Settings (Ctrl+,).</source>
            <translation>本地控制 API 未运行：{error}。请在“设置”（Ctrl+,）中选择其他端口。</translation>
        </message>
        <message>
            <source>Alert: {title}: {msg}</source>
            <translation>告警：{title}：{msg}</translation>
        </message>
        <message>
            <source>a camera</source>
            <translation>某个摄像头</translation>
        </message>
        <message>
            <source>{name} failed</source>
            <translation>{name} 失败</translation>
        </message>
        <message>
            <source>the worker keeps failing; see its logs</source>
            <translation>工作进程反复失败；请查看其日志</translation>
        </message>
        <message>
            <source>{live} cameras with video</source>
            <translation>{live} 个摄像头有画面</translation>
        </message>
        <message>
            <source>; no video: {names}</source>
            <translation>；无画面：{names}</translation>
        </message>
        <message>
            <source>Edge Station — {0}</source>
            <translation>Edge Station — {0}</translation>
        </message>
        <message>
            <source>⟳ {n} running</source>
            <translation>⟳ {n} 项进行中</translation>
        </message>
    </context>
    <context>
        <name>_ChecksTable</name>
        <message>
            <source>Check</source>
            <translation>检查项</translation>
        </message>
        <message>
            <source>Status</source>
            <translation>状态</translation>
        </message>
        <message>
            <source>Value</source>
            <translation>数值</translation>
        </message>
        <message>
            <source>Limit</source>
            <translation>限值</translation>
        </message>
        <message>
            <source>Why</source>
            <translation>原因</translation>
        </message>
    </context>
    <context>
        <name>alerts_page</name>
        <message>
            <source> s</source>
            <translation> 秒</translation>
        </message>
    </context>
</TS>
