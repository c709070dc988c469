import Foundation
import HTTPTypes
import Hummingbird
import PulseboardKernel

/// A JSON answer with a status, encoded by the shared encoder.
package struct JSONResponse<Value: Encodable> {
    var value: Value
    var status: HTTPResponse.Status = .ok

    package init(_ value: Value, status: HTTPResponse.Status = .ok) {
        self.value = value
        self.status = status
    }

    package var response: Response {
        get throws {
            let data = try JSONEncoder.sortedKeys.encode(value)
            return Response(
                status: status,
                headers: [.contentType: "application/json; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(bytes: data))
            )
        }
    }
}

extension Response {
    /// A CSV file to download, starting with a byte order mark so that spreadsheets read UTF-8.
    package static func csvDownload(_ csv: String, filename: String) -> Response {
        Response(
            status: .ok,
            headers: [.contentType: "text/csv; charset=utf-8", .contentDisposition: "attachment; filename=\"\(filename)\""],
            body: .init(byteBuffer: ByteBuffer(string: CSVTable.byteOrderMark + csv)))
    }
}
