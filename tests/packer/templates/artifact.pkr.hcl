variable "file" {
  type = string
}

source "null" "test" {
  communicator = "none"
}

build {
  sources = ["source.null.test"]

  provisioner "shell-local" {
    inline = ["echo disk > ${var.file}"]
  }

  post-processor "artifice" {
    files = [var.file]
  }
}
