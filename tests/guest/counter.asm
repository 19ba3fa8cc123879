; virtfleet.virt test guest: a 512-byte real-mode boot sector.
; It prints "virtfleet-guest tick NNNNNNNN" (hex counter) on COM1 about every
; 200 ms, so a test can prove from the serial log that the guest really runs,
; keeps running (e.g. across a live migration) and did not reboot.
; Build: nasm -f bin -o counter.bin counter.asm
bits 16
org 0x7c00

start:
    cli
    xor ax, ax
    mov ds, ax
    mov ss, ax
    mov sp, 0x7c00
    sti
    xor ebx, ebx                ; the counter

tick:
    mov si, msg
    call puts
    mov eax, ebx
    mov cx, 8
.hex:
    rol eax, 4
    push eax
    and al, 0x0f
    add al, '0'
    cmp al, '9'
    jbe .digit
    add al, 'a' - '9' - 1
.digit:
    call putc
    pop eax
    loop .hex
    mov al, 13
    call putc
    mov al, 10
    call putc
    inc ebx
    ; BIOS wait (INT 15h AH=86h): CX:DX microseconds = 200000
    mov ah, 0x86
    mov cx, 0x0003
    mov dx, 0x0d40
    int 0x15
    jmp tick

puts:                            ; print the NUL-terminated string at DS:SI
    lodsb
    test al, al
    jz .done
    call putc
    jmp puts
.done:
    ret

putc:                            ; write AL to COM1 when its transmitter is empty
    push dx
    push ax
    mov dx, 0x3fd
.wait:
    in al, dx
    test al, 0x20
    jz .wait
    pop ax
    mov dx, 0x3f8
    out dx, al
    pop dx
    ret

msg: db 'virtfleet-guest tick ', 0

times 510 - ($ - $$) db 0
dw 0xaa55
