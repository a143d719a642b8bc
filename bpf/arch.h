/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * What differs between the architectures the BPF objects are built for
 * (Makefile: -D__TARGET_ARCH_x86 or -D__TARGET_ARCH_arm64, and
 * bpf/<arch>/vmlinux.h on the include path): the numbers of the syscalls the
 * sys_enter/sys_exit programs look at, where a syscall's number is kept in
 * pt_regs, and the registers of Go's internal ABI (gotls). Function
 * arguments and results of C calls go through libbpf's PT_REGS_* macros,
 * which read __TARGET_ARCH_* themselves.
 */
#ifndef ECAPTURE_ARCH_H
#define ECAPTURE_ARCH_H

#if defined(__TARGET_ARCH_x86)

/* arch/x86/entry/syscalls/syscall_64.tbl */
#define NR_READ 0
#define NR_WRITE 1
#define NR_READV 19
#define NR_WRITEV 20
#define NR_SENDTO 44
#define NR_RECVFROM 45
#define NR_SENDMSG 46
#define NR_RECVMSG 47

/* The syscall's number, as sys_exit sees it. */
#define SYSCALL_NR(regs) BPF_CORE_READ((regs), orig_ax)

/* Go ABIInternal on amd64: integer arguments and results in RAX, RBX, RCX,
 * RDI, RSI, R8, R9, R10, R11; the current goroutine (g) in R14. */
#define GO_PARM1(ctx) ((ctx)->ax)
#define GO_PARM2(ctx) ((ctx)->bx)
#define GO_PARM3(ctx) ((ctx)->cx)
#define GO_PARM4(ctx) ((ctx)->di)
#define GO_PARM5(ctx) ((ctx)->si)
#define GO_PARM6(ctx) ((ctx)->r8)
#define GO_PARM7(ctx) ((ctx)->r9)
#define GO_PARM8(ctx) ((ctx)->r10)
#define GO_PARM9(ctx) ((ctx)->r11)
#define GO_RET1(ctx) ((ctx)->ax)
#define GO_G(ctx) ((ctx)->r14)

#elif defined(__TARGET_ARCH_arm64)

/* include/uapi/asm-generic/unistd.h (arm64 uses the generic table) */
#define NR_READ 63
#define NR_WRITE 64
#define NR_READV 65
#define NR_WRITEV 66
#define NR_SENDTO 206
#define NR_RECVFROM 207
#define NR_SENDMSG 211
#define NR_RECVMSG 212

/* arch/arm64/include/asm/ptrace.h: struct pt_regs keeps it in syscallno. */
#define SYSCALL_NR(regs) ((__u64)(__s64)BPF_CORE_READ((regs), syscallno))

/* Go ABIInternal on arm64: arguments and results in R0..R15; g in R28.
 * A uprobe's ctx is the user's pt_regs, which starts with user_pt_regs. */
#define GO_REG(ctx, n) (((const struct user_pt_regs *)(ctx))->regs[n])
#define GO_PARM1(ctx) GO_REG(ctx, 0)
#define GO_PARM2(ctx) GO_REG(ctx, 1)
#define GO_PARM3(ctx) GO_REG(ctx, 2)
#define GO_PARM4(ctx) GO_REG(ctx, 3)
#define GO_PARM5(ctx) GO_REG(ctx, 4)
#define GO_PARM6(ctx) GO_REG(ctx, 5)
#define GO_PARM7(ctx) GO_REG(ctx, 6)
#define GO_PARM8(ctx) GO_REG(ctx, 7)
#define GO_PARM9(ctx) GO_REG(ctx, 8)
#define GO_RET1(ctx) GO_REG(ctx, 0)
#define GO_G(ctx) GO_REG(ctx, 28)

#else
#error "set __TARGET_ARCH_x86 or __TARGET_ARCH_arm64 (the Makefile does)"
#endif

#endif /* ECAPTURE_ARCH_H */
