"""Which section of `nvidia-smi -q` holds which fields, by the tags of `nvidia-smi -q -x`: what reading a
log whose indentation was stripped (GitHub and chat renderers collapse it) needs to put each line back in its section.

Generated from every XML and -q text fixture in the repository (drivers 384 to 590) by
tests/fixtures/nvidia-smi-q/make_layout.py; tests/test_nvidia_smi_flat.py fails when a fixture holds a section
or field this table lacks."""

from __future__ import annotations

SECTIONS: dict[str, frozenset[str]] = {
    "aggregate": frozenset(
        [
            "double_bit",
            "dram_correctable",
            "dram_uncorrectable",
            "single_bit",
            "sram_correctable",
            "sram_threshold_exceeded",
            "sram_uncorrectable",
            "sram_uncorrectable_parity",
            "sram_uncorrectable_secded",
        ]
    ),
    "aggregate_uncorrectable_sram_sources": frozenset(
        ["sram_l2", "sram_microcontroller", "sram_other", "sram_pcie", "sram_sm"]
    ),
    "applications_clocks": frozenset(["graphics_clock", "mem_clock"]),
    "bar1_memory_usage": frozenset(["free", "total", "used"]),
    "capabilities": frozenset(["egm"]),
    "cc_protected_memory_usage": frozenset(["free", "total", "used"]),
    "clock_policy": frozenset(["auto_boost", "auto_boost_default"]),
    "clocks": frozenset(["graphics_clock", "mem_clock", "sm_clock", "video_clock"]),
    "clocks_event_reasons": frozenset(
        [
            "clocks_event_reason_applications_clocks_setting",
            "clocks_event_reason_display_clocks_setting",
            "clocks_event_reason_gpu_idle",
            "clocks_event_reason_hw_power_brake_slowdown",
            "clocks_event_reason_hw_slowdown",
            "clocks_event_reason_hw_thermal_slowdown",
            "clocks_event_reason_sw_power_cap",
            "clocks_event_reason_sw_thermal_slowdown",
            "clocks_event_reason_sync_boost",
        ]
    ),
    "clocks_event_reasons_counters": frozenset(
        [
            "clocks_event_reasons_counters_hw_power_brake",
            "clocks_event_reasons_counters_hw_therm_slowdown",
            "clocks_event_reasons_counters_sw_power_cap",
            "clocks_event_reasons_counters_sw_therm_slowdown",
            "clocks_event_reasons_counters_sync_boost",
        ]
    ),
    "clocks_throttle_reasons": frozenset(
        [
            "clocks_throttle_reason_applications_clocks_setting",
            "clocks_throttle_reason_display_clocks_setting",
            "clocks_throttle_reason_gpu_idle",
            "clocks_throttle_reason_hw_power_brake_slowdown",
            "clocks_throttle_reason_hw_slowdown",
            "clocks_throttle_reason_hw_thermal_slowdown",
            "clocks_throttle_reason_sw_power_cap",
            "clocks_throttle_reason_sw_thermal_slowdown",
            "clocks_throttle_reason_sync_boost",
        ]
    ),
    "default_applications_clocks": frozenset(["graphics_clock", "mem_clock"]),
    "deferred_clocks": frozenset(["mem_clock"]),
    "device_attributes": frozenset(["shared"]),
    "double_bit": frozenset(
        [
            "cbu",
            "device_memory",
            "l1_cache",
            "l2_cache",
            "register_file",
            "texture_memory",
            "texture_shared",
            "texture_shm",
            "total",
        ]
    ),
    "double_bit_retirement": frozenset(["retired_count", "retired_pagelist"]),
    "dram_encryption_mode": frozenset(["current_dram_encryption", "pending_dram_encryption"]),
    "driver_model": frozenset(["current_dm", "pending_dm"]),
    "ecc_error_count": frozenset(["volatile_count"]),
    "ecc_errors": frozenset(
        [
            "aggregate",
            "aggregate_uncorrectable_sram_sources",
            "channel_repair_pending",
            "tpc_repair_pending",
            "unrepairable_memory",
            "volatile",
        ]
    ),
    "ecc_mode": frozenset(["current_ecc", "pending_ecc"]),
    "encoder_stats": frozenset(["active_sessions", "average_fps", "average_latency", "session_count"]),
    "fabric": frozenset(["cliqueId", "clusterUuid", "health", "state", "status"]),
    "fb_memory_usage": frozenset(["free", "reserved", "total", "used"]),
    "fbc_stats": frozenset(["active_sessions", "average_fps", "average_latency", "session_count"]),
    "gpu": frozenset(
        [
            "accounted_processes",
            "accounting_mode",
            "accounting_mode_buffer_size",
            "addressing_mode",
            "applications_clocks",
            "bar1_memory_usage",
            "board_id",
            "board_part_number",
            "c2c_mode",
            "capabilities",
            "cc_protected_memory_usage",
            "clock_policy",
            "clocks",
            "clocks_event_reasons",
            "clocks_event_reasons_counters",
            "clocks_throttle_reasons",
            "compute_mode",
            "default_applications_clocks",
            "deferred_clocks",
            "display_active",
            "display_attached",
            "display_mode",
            "dram_encryption_mode",
            "driver_model",
            "ecc_errors",
            "ecc_mode",
            "edpp_multiplier",
            "encoder_stats",
            "fabric",
            "fan_speed",
            "fb_memory_usage",
            "fbc_stats",
            "gpu_fru_part_number",
            "gpu_memory_power_readings",
            "gpu_module_id",
            "gpu_operation_mode",
            "gpu_part_number",
            "gpu_power_readings",
            "gpu_recovery_action",
            "gpu_reset_status",
            "gpu_virtualization_mode",
            "gsp_firmware_version",
            "ibmnpu",
            "inforom_bbx_flush",
            "inforom_version",
            "max_clocks",
            "max_customer_boost_clocks",
            "mig_devices",
            "mig_mode",
            "minor_number",
            "module_id",
            "module_power_readings",
            "multigpu_board",
            "pci",
            "pdi",
            "performance_state",
            "persistence_mode",
            "platformInfo",
            "power_profiles",
            "power_readings",
            "power_smoothing",
            "processes",
            "product_architecture",
            "product_brand",
            "product_name",
            "remapped_rows",
            "retired_pages",
            "serial",
            "sparse_operation_mode",
            "supported_clocks",
            "supported_gpu_target_temp",
            "temperature",
            "utilization",
            "uuid",
            "vbios_version",
            "voltage",
        ]
    ),
    "gpu_memory_power_readings": frozenset(["average_power_draw", "instant_power_draw"]),
    "gpu_operation_mode": frozenset(["current", "current_gom", "pending", "pending_gom"]),
    "gpu_power_readings": frozenset(
        [
            "average_power_draw",
            "current_power_limit",
            "default_power_limit",
            "instant_power_draw",
            "max_power_limit",
            "min_power_limit",
            "power_draw",
            "power_state",
            "requested_power_limit",
        ]
    ),
    "gpu_reset_status": frozenset(["drain_and_reset_recommended", "reset_required"]),
    "gpu_virtualization_mode": frozenset(["host_vgpu_mode", "vgpu_heterogeneous_mode", "virtualization_mode"]),
    "health": frozenset(
        [
            "access_timeout_recovery",
            "bandwidth",
            "incorrect_configuration",
            "route_recovery_in_progress",
            "route_unhealthy",
            "summary",
        ]
    ),
    "ibmnpu": frozenset(["relaxed_ordering_mode"]),
    "inforom_bbx_flush": frozenset(["latest_duration", "latest_timestamp"]),
    "inforom_version": frozenset(
        ["ecc_object", "image_version", "img_version", "oem_object", "power_management_object", "pwr_object"]
    ),
    "link_widths": frozenset(["current_link_width", "max_link_width"]),
    "max_clocks": frozenset(["graphics_clock", "mem_clock", "sm_clock", "video_clock"]),
    "max_customer_boost_clocks": frozenset(["graphics_clock"]),
    "mig_device": frozenset(
        [
            "bar1_memory_usage",
            "compute_instance_id",
            "device_attributes",
            "ecc_error_count",
            "ecc_errors",
            "fb_memory_usage",
            "gpu_instance_id",
            "index",
        ]
    ),
    "mig_devices": frozenset(["mig_device"]),
    "mig_mode": frozenset(["current_mig", "pending_mig"]),
    "module_power_readings": frozenset(
        [
            "average_power_draw",
            "current_power_limit",
            "default_power_limit",
            "instant_power_draw",
            "max_power_limit",
            "min_power_limit",
            "power_draw",
            "power_state",
            "requested_power_limit",
        ]
    ),
    "multiple_single_bit_retirement": frozenset(["retired_count", "retired_pagelist"]),
    "nvidia_smi_log": frozenset(["attached_gpus", "cuda_version", "driver_version", "gpu", "timestamp"]),
    "pci": frozenset(
        [
            "atomic_caps_inbound",
            "atomic_caps_outbound",
            "bus",
            "device",
            "device_id",
            "domain",
            "pci_base_class",
            "pci_bridge_chip",
            "pci_bus",
            "pci_bus_id",
            "pci_device",
            "pci_device_id",
            "pci_domain",
            "pci_gpu_link_info",
            "pci_sub_class",
            "pci_sub_system_id",
            "replay_counter",
            "replay_number_rollovers",
            "replay_rollover_counter",
            "rx_throughput",
            "rx_util",
            "sub_system_id",
            "tx_throughput",
            "tx_util",
        ]
    ),
    "pci_bridge_chip": frozenset(["bridge_chip_fw", "bridge_chip_type", "firmware", "type"]),
    "pci_gpu_link_info": frozenset(["link_widths", "pcie_gen"]),
    "pcie_gen": frozenset(
        ["current_link_gen", "device_current_link_gen", "max_device_link_gen", "max_host_link_gen", "max_link_gen"]
    ),
    "platformInfo": frozenset(
        ["chassis_serial_number", "gpu_fabric_guid", "host_id", "module_id", "peer_type", "slot_number", "tray_index"]
    ),
    "power_profiles": frozenset(["power_profile_enforced_profiles", "power_profile_requested_profiles"]),
    "power_readings": frozenset(
        [
            "default_power_limit",
            "enforced_power_limit",
            "max_power_limit",
            "min_power_limit",
            "power_draw",
            "power_limit",
            "power_management",
            "power_state",
        ]
    ),
    "process_info": frozenset(["compute_instance_id", "gpu_instance_id", "pid", "process_name", "type", "used_memory"]),
    "processes": frozenset(["process_info"]),
    "remapped_rows": frozenset(
        [
            "remapped_row_corr",
            "remapped_row_failure",
            "remapped_row_pending",
            "remapped_row_unc",
            "row_remapper_histogram",
        ]
    ),
    "retired_page": frozenset(["retired_page_address"]),
    "retired_pagelist": frozenset(["retired_page"]),
    "retired_pages": frozenset(
        ["double_bit_retirement", "multiple_single_bit_retirement", "pending_blacklist", "pending_retirement"]
    ),
    "row_remapper_histogram": frozenset(
        [
            "row_remapper_histogram_high",
            "row_remapper_histogram_low",
            "row_remapper_histogram_max",
            "row_remapper_histogram_none",
            "row_remapper_histogram_partial",
        ]
    ),
    "shared": frozenset(
        ["copy_engine_count", "decoder_count", "encoder_count", "jpg_count", "multiprocessor_count", "ofa_count"]
    ),
    "single_bit": frozenset(
        [
            "cbu",
            "device_memory",
            "l1_cache",
            "l2_cache",
            "register_file",
            "texture_memory",
            "texture_shared",
            "texture_shm",
            "total",
        ]
    ),
    "supported_clocks": frozenset(["supported_mem_clock"]),
    "supported_gpu_target_temp": frozenset(["gpu_target_temp_max", "gpu_target_temp_min"]),
    "supported_mem_clock": frozenset(["supported_graphics_clock", "value"]),
    "temperature": frozenset(
        [
            "gpu_target_temperature",
            "gpu_temp",
            "gpu_temp_max_gpu_threshold",
            "gpu_temp_max_gpu_tlimit_threshold",
            "gpu_temp_max_mem_threshold",
            "gpu_temp_max_mem_tlimit_threshold",
            "gpu_temp_max_threshold",
            "gpu_temp_max_tlimit_threshold",
            "gpu_temp_slow_threshold",
            "gpu_temp_slow_tlimit_threshold",
            "gpu_temp_tlimit",
            "memory_temp",
        ]
    ),
    "utilization": frozenset(["decoder_util", "encoder_util", "gpu_util", "jpeg_util", "memory_util", "ofa_util"]),
    "volatile": frozenset(
        [
            "double_bit",
            "dram_correctable",
            "dram_uncorrectable",
            "single_bit",
            "sram_correctable",
            "sram_uncorrectable",
            "sram_uncorrectable_parity",
            "sram_uncorrectable_secded",
        ]
    ),
    "volatile_count": frozenset(["sram_uncorrectable"]),
    "voltage": frozenset(["graphics", "graphics_volt"]),
}
