"""Why a meeting room is not ready, as sentences for people: one per readiness reason code
(docs/probes.md "Meeting rooms", the agent's meeting_room probe, and the collector's own
`no_fresh_check`)."""

from __future__ import annotations

__all__ = ["READINESS_REASONS", "reason_sentence"]

# code -> (Vietnamese, English). The probe's detail (English, measured values) follows.
READINESS_REASONS: dict[str, tuple[str, str]] = {
    "device_missing": (
        "Thiếu thiết bị (camera, micrô, loa, màn hình) hoặc thiết bị có nhưng bị lỗi.",
        "A device (camera, microphone, speaker, display) is missing or not working.",
    ),
    "devices_unreadable": (
        "Không đọc được danh sách thiết bị của máy.",
        "The machine's device list could not be read.",
    ),
    "path_down": (
        "Không kết nối được tới máy chủ hội nghị hoặc máy chủ thu thập.",
        "The conference server or the collector cannot be reached.",
    ),
    "rtt_high": ("Độ trễ đường truyền cao.", "The round-trip time is high."),
    "jitter_high": ("Độ dao động trễ cao.", "The jitter is high."),
    "loss_high": ("Đường truyền mất gói nhiều.", "Packet loss is high."),
    "path_unmeasured": ("Chưa đo được đường truyền.", "The network path was not measured."),
    "throughput_low": ("Băng thông tải xuống thấp.", "The download bandwidth is low."),
    "throughput_failed": ("Đo băng thông tải xuống thất bại.", "The download test failed."),
    "throughput_unmeasured": (
        "Chưa đo băng thông tải xuống.",
        "No download bandwidth was measured yet.",
    ),
    "upload_low": ("Băng thông tải lên thấp.", "The upload bandwidth is low."),
    "upload_failed": ("Đo băng thông tải lên thất bại.", "The upload test failed."),
    "upload_unmeasured": ("Chưa đo băng thông tải lên.", "No upload bandwidth was measured yet."),
    "app_missing": (
        "Chưa cài phần mềm họp trực tuyến bắt buộc.",
        "A required conferencing program is not installed.",
    ),
    "app_not_running": (
        "Phần mềm họp trực tuyến đã cài nhưng chưa chạy.",
        "The conferencing program is installed but not running.",
    ),
    "clock_offset": (
        "Đồng hồ của máy lệch so với máy chủ.",
        "The machine's clock differs from the collector's.",
    ),
    "clock_unknown": (
        "Chưa đo được độ lệch đồng hồ của máy.",
        "The machine's clock offset is not measured yet.",
    ),
    "cpu_busy": ("Máy đang quá tải CPU.", "The CPU is overloaded."),
    "memory_low": ("Máy sắp hết bộ nhớ.", "The machine is low on memory."),
    "disk_low": ("Ổ đĩa của máy sắp đầy.", "The machine's disk is almost full."),
    "no_fresh_check": (
        "Phòng họp không trả lời yêu cầu kiểm tra trước cuộc họp (máy tắt hoặc mất kết nối).",
        "The room did not answer the check before the meeting (off or cut off).",
    ),
}


def reason_sentence(reason: str, lang: str) -> str:
    """`code: detail` (collector.meetings) as a sentence in `lang`, the detail after it; an
    unknown code stays as it came."""
    code, _, detail = reason.partition(": ")
    sentences = READINESS_REASONS.get(code)
    if sentences is None:
        return reason
    sentence = sentences[0] if lang == "vi" else sentences[1]
    return f"{sentence.removesuffix('.')} ({detail})." if detail else sentence
